"""The staff roles: one registry that seeding, the audit trail's role mapping, the permission
matrix (tests/staff/test_permission_matrix.py) and docs/access.md all read.

A role is a Django group with exactly named permissions. Permissions are named as
"app_label.codename" (the form has_perm() takes), never by importing the app that owns them:
staff is a base app that billing, entitlements and audit may import, not the other way round.
Each role also names the `actor_role` the trail records for its members (the values of
audit.models.ActorRole, as strings; audit checks they exist, check audit.E003).

A name typed twice is a bug waiting for a rename: a group's name lives here (or in the setting
named here) and nowhere else.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from config.context import role_seeding

# What the trail records for an active staff member whose groups name no role of this registry
# (a group renamed by hand, a group made in the admin): visibly not a customer (USER), and
# visibly not any seeded role. Also an audit.models.ActorRole value.
UNKNOWN_STAFF_AUDIT_ROLE = "STAFF"


@dataclass(frozen=True)
class Role:
    key: str  # the matrix's column and the docs' row id: lowercase, underscores
    default_group: str
    audit_role: str  # audit.models.ActorRole value recorded for members
    permissions: tuple[str, ...]  # "app_label.codename"
    summary: str  # what the role is for, in a sentence or two (docs/access.md)
    # The setting that renames the group, if the name is configurable.
    group_setting: str | None = None
    # True: every migrate resets the group to exactly these permissions (hand-added ones go).
    # False: migrate adds any missing one and leaves what was added by hand.
    exact: bool = False

    @property
    def group(self) -> str:
        """The group's name now (read from its setting on every call, never cached)."""
        if self.group_setting is None:
            return self.default_group
        return getattr(settings, self.group_setting, self.default_group)


# Strongest first: a person in several groups is recorded with the first role that matches.
BILLING_ADMIN = Role(
    key="billing_admin",
    default_group="Billing admin",
    audit_role="ADMIN",
    permissions=(
        "billing.view_stripeevent",
        "billing.reprocess_deadletter",
        "entitlements.view_plan",
        "entitlements.change_plan",
        "entitlements.view_planfeature",
        "entitlements.view_feature",
    ),
    summary="view billing's inbox and reprocess dead letters (with a reason); view and change "
    "plans (name, durations, feature set; the code is read-only), view features and plan "
    "features. No plan deletion (entitlements keep pointing at their plan), no adding plans.",
)
SUPPORT = Role(
    key="support",
    default_group="Support",
    audit_role="SUPPORT",
    permissions=(
        "entitlements.view_entitlement",
        "entitlements.grant_entitlement",
        "entitlements.revoke_entitlement",
        "entitlements.view_plan",
        "entitlements.view_feature",
        "entitlements.view_planfeature",
        "entitlements.view_unknownprice",
        "entitlements.view_parkedevent",
        "entitlements.view_featureblock",
        "entitlements.view_grantrequest",
    ),
    summary="view entitlements, plans, features, unknown prices, parked events and grant "
    "requests; grant and revoke entitlements by hand (admin form or `/api/entitlements/grant/`, "
    "`/revoke/`), always with a reason, never on their own account; approve or reject another "
    "member's bulk grant request. No audit trail, so no audit export.",
)
FINANCE = Role(
    key="finance",
    default_group="Finance",
    group_setting="AUDIT_FINANCE_GROUP",
    audit_role="FINANCE",
    permissions=(
        "audit.view_auditevent",
        "audit.view_auditcheckpoint",
        "audit.view_dailyreview",
        "audit.sign_off_dailyreview",
        "audit.view_accessreview",
        "audit.conduct_accessreview",
        "djstripe.view_event",
        "djstripe.view_webhookeventtrigger",
        "billing.view_stripeevent",
        "entitlements.view_entitlement",
        "entitlements.view_plan",
        "entitlements.view_feature",
        "entitlements.view_planfeature",
        "entitlements.view_featureblock",
    ),
    summary="view the audit trail, checkpoints, the compliance dashboard, export the trail as "
    "CSV; work the daily review's findings and sign days off (`audit.sign_off_dailyreview`, "
    "[docs/audit.md](audit.md#daily-review)); conduct the staff access review "
    "(`audit.conduct_accessreview`, [docs/audit.md](audit.md#staff-access-review)); download "
    "reviews' evidence; view Stripe's event log (dj-stripe `Event`, `WebhookEventTrigger`), "
    "billing's inbox (`StripeEvent`), entitlements, plans, features. Nothing else, and nothing "
    "else can be changed.",
    exact=True,
)

ROLES: tuple[Role, ...] = (BILLING_ADMIN, SUPPORT, FINANCE)


def role_for_groups(group_names: Iterable[str]) -> Role | None:
    """The strongest role among these group names, or None when none is a role's group."""
    names = set(group_names)
    return next((role for role in ROLES if role.group in names), None)


def _permission_query(names: Iterable[str]) -> Q:
    wanted = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".", 1)
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    return wanted


def roles_seed(*, using: str = "default") -> list[Group]:
    """Create every role's group and give it its permissions (idempotent; run by migrate).

    Permissions of an app that is not installed are skipped. The change is not recorded in the
    trail as a hand-made permission change (config.context.role_seeding).
    """
    labels = {name.split(".", 1)[0] for role in ROLES for name in role.permissions}
    for label in sorted(labels):
        try:
            app_config = apps.get_app_config(label)
        except LookupError:
            continue
        # post_migrate reaches staff before the apps below it: make their permissions now.
        create_permissions(app_config, verbosity=0, using=using)
    groups = []
    for role in ROLES:
        group, _ = Group.objects.using(using).get_or_create(name=role.group)
        permissions = Permission.objects.using(using).filter(_permission_query(role.permissions))
        with role_seeding():
            if role.exact:
                group.permissions.set(permissions)
            else:
                group.permissions.add(*permissions)
        groups.append(group)
    return groups
