"""billing's signal receivers: thin, each calls a service."""

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from config.context import role_seeding

BILLING_ADMIN_GROUP = "Billing admin"
# Least privilege: see the inbox and requeue dead letters, and edit the plan catalogue.
BILLING_ADMIN_PERMISSIONS = ("view_stripeevent", "reprocess_deadletter")
# Plans are entitlements' models: named by app label and codename, never imported.
BILLING_ADMIN_PLAN_PERMISSIONS = ("view_plan", "change_plan", "view_planfeature", "view_feature")


def seed_billing_admin_group(sender, **kwargs):
    """post_migrate: create the "Billing admin" group with its permissions (idempotent)."""
    if apps.is_installed("entitlements"):
        # entitlements migrates after billing: its permissions may not exist yet.
        create_permissions(apps.get_app_config("entitlements"), verbosity=0)
    permissions = Permission.objects.select_related("content_type").filter(
        Q(content_type__app_label="billing", codename__in=BILLING_ADMIN_PERMISSIONS)
        | Q(content_type__app_label="entitlements", codename__in=BILLING_ADMIN_PLAN_PERMISSIONS)
    )
    billing_permissions = [p for p in permissions if p.content_type.app_label == "billing"]
    if len(billing_permissions) != len(BILLING_ADMIN_PERMISSIONS):
        return  # permissions are created by an earlier post_migrate receiver; not yet there
    group, _ = Group.objects.get_or_create(name=BILLING_ADMIN_GROUP)
    with role_seeding():
        group.permissions.add(*permissions)


def forget_cached_endpoint_secrets(sender, **kwargs):
    """post_save/post_delete of an endpoint or secret: this process stops using the old set now."""
    from billing.selectors import endpoint_auth_forget

    endpoint_auth_forget()
