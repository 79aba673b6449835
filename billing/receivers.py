"""billing's signal receivers: thin, each calls a service."""

from django.contrib.auth.models import Group, Permission

BILLING_ADMIN_GROUP = "Billing admin"
# Least privilege: see the inbox and requeue dead letters, nothing else.
BILLING_ADMIN_PERMISSIONS = ("view_stripeevent", "reprocess_deadletter")


def seed_billing_admin_group(sender, **kwargs):
    """post_migrate: create the "Billing admin" group with its permissions (idempotent)."""
    permissions = Permission.objects.filter(
        content_type__app_label="billing", codename__in=BILLING_ADMIN_PERMISSIONS
    )
    if len(permissions) != len(BILLING_ADMIN_PERMISSIONS):
        return  # permissions are created by an earlier post_migrate receiver; not yet there
    group, _ = Group.objects.get_or_create(name=BILLING_ADMIN_GROUP)
    group.permissions.add(*permissions)
