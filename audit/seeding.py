"""The "Finance" group: view permissions only, on the trail, payments and entitlements."""

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from config.context import role_seeding

# (app_label, model) pairs the group may view. Looked up by label, never imported, so audit
# does not depend on entitlements' code; missing models are skipped.
VIEWABLE = (
    ("audit", "auditevent"),
    ("audit", "auditcheckpoint"),
    ("djstripe", "event"),
    ("djstripe", "webhookeventtrigger"),
    ("billing", "stripeevent"),
    ("entitlements", "entitlement"),
    ("entitlements", "plan"),
    ("entitlements", "feature"),
    ("entitlements", "planfeature"),
    ("entitlements", "featureblock"),
)


def finance_group_seed(*, using: str = "default") -> Group:
    """Create the group if missing and give it exactly the view permissions (idempotent)."""
    group, _ = Group.objects.using(using).get_or_create(name=settings.AUDIT_FINANCE_GROUP)
    wanted = Q()
    for app_label, model in VIEWABLE:
        wanted |= Q(content_type__app_label=app_label, codename=f"view_{model}")
    permissions = Permission.objects.using(using).filter(wanted)
    with role_seeding():
        group.permissions.set(permissions)
    return group
