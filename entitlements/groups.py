"""The seeded "Support" group: views entitlements, plans and features; grants and revokes."""

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

from config.context import role_seeding

SUPPORT_GROUP = "Support"
SUPPORT_PERMISSIONS = (
    "view_entitlement",
    "grant_entitlement",
    "revoke_entitlement",
    "view_plan",
    "view_feature",
    "view_planfeature",
    "view_unknownprice",
    "view_parkedevent",
    "view_featureblock",
    "view_grantrequest",
)


def support_group_seed() -> Group:
    """Idempotent: creates the group when missing and adds any missing permission."""
    # Permissions of this app exist only after auth's post_migrate ran for it; make sure.
    create_permissions(apps.get_app_config("entitlements"), verbosity=0)
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    permissions = Permission.objects.filter(
        content_type__app_label="entitlements", codename__in=SUPPORT_PERMISSIONS
    )
    with role_seeding():
        group.permissions.add(*permissions)
    return group
