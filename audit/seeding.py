"""The "Finance" group: view permissions on the trail, payments and entitlements, and the one
permissions to work and sign off the daily review and to conduct the staff access review
(through audit/signoff.py's and audit/access_review.py's services)."""

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from config.context import role_seeding

# (app_label, model) pairs the group may view. Looked up by label, never imported, so audit
# does not depend on entitlements' code; missing models are skipped.
VIEWABLE = (
    ("audit", "auditevent"),
    ("audit", "auditcheckpoint"),
    ("audit", "dailyreview"),
    ("audit", "accessreview"),
    ("djstripe", "event"),
    ("djstripe", "webhookeventtrigger"),
    ("billing", "stripeevent"),
    ("entitlements", "entitlement"),
    ("entitlements", "plan"),
    ("entitlements", "feature"),
    ("entitlements", "planfeature"),
    ("entitlements", "featureblock"),
)
# Permissions beyond viewing, as (app_label, codename).
REVIEWING = (("audit", "sign_off_dailyreview"), ("audit", "conduct_accessreview"))


def finance_group_seed(*, using: str = "default") -> Group:
    """Create the group if missing and give it exactly these permissions (idempotent)."""
    group, _ = Group.objects.using(using).get_or_create(name=settings.AUDIT_FINANCE_GROUP)
    wanted = Q()
    for app_label, model in VIEWABLE:
        wanted |= Q(content_type__app_label=app_label, codename=f"view_{model}")
    for app_label, codename in REVIEWING:
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    permissions = Permission.objects.using(using).filter(wanted)
    with role_seeding():
        group.permissions.set(permissions)
    return group
