"""The roles registry (staff/roles.py): seeding, the trail's role mapping and docs/access.md
all follow it, so a renamed group cannot silently turn its members into customers."""

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core import checks
from django.core.management import call_command

from audit.models import ActorRole
from audit.services import actor_snapshot
from config import context
from staff.roles import FINANCE, ROLES, SUPPORT, roles_seed


def roles_markdown() -> str:
    """The registry as the Markdown table docs/access.md carries."""
    lines = [
        "| Role | Group | In the trail (`actor_role`) | Permissions | May |",
        "| --- | --- | --- | --- | --- |",
    ]
    for role in ROLES:
        group = f"`{role.default_group}`"
        if role.group_setting:
            group += f" (setting `{role.group_setting}`)"
        permissions = ", ".join(f"`{name}`" for name in role.permissions)
        reset = (
            "`migrate` resets the group to exactly these permissions."
            if role.exact
            else "`migrate` adds any missing one and keeps what was added by hand."
        )
        lines.append(
            f"| **{role.default_group}** | {group} | `{role.audit_role}` | {permissions} | "
            f"{role.summary} {reset} |"
        )
    return "\n".join(lines) + "\n"


def granted(group: Group) -> set[str]:
    pairs = group.permissions.values_list("content_type__app_label", "codename")
    return {f"{app_label}.{codename}" for app_label, codename in pairs}


def test_docs_carry_the_registry():
    docs = (settings.BASE_DIR / "docs" / "access.md").read_text(encoding="utf-8")
    assert roles_markdown() in docs, "regenerate docs/access.md's roles table from staff/roles.py"


@pytest.mark.django_db
def test_migrate_seeds_every_role_with_exactly_its_permissions():
    for role in ROLES:
        assert granted(Group.objects.get(name=role.group)) == set(role.permissions), role.key


@pytest.mark.django_db
def test_seeding_is_idempotent_and_exact_roles_lose_hand_added_permissions():
    finance, support = Group.objects.get(name="Finance"), Group.objects.get(name="Support")
    extra = "entitlements.delete_entitlement"
    app_label, codename = extra.split(".")
    from django.contrib.auth.models import Permission

    permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
    finance.permissions.add(permission)
    support.permissions.add(permission)
    call_command("migrate", verbosity=0, interactive=False)
    roles_seed()
    assert granted(finance) == set(FINANCE.permissions)  # exact: reset
    assert granted(support) == {*SUPPORT.permissions, extra}  # additive: kept
    assert Group.objects.filter(name__in=[role.group for role in ROLES]).count() == len(ROLES)


def member(django_user_model, group_name: str, *, is_staff: bool = True):
    user = django_user_model.objects.create_user(f"m-{group_name}", is_staff=is_staff)
    user.groups.add(Group.objects.get_or_create(name=group_name)[0])
    return user


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.key)
def test_each_roles_members_are_recorded_with_its_audit_role(role, django_user_model):
    user = member(django_user_model, role.group)
    snapshot = actor_snapshot(context.Actor(kind="user", user_id=user.pk))
    assert snapshot.role == role.audit_role


@pytest.mark.django_db
def test_a_renamed_finance_group_is_seeded_and_recorded_under_its_new_name(
    settings, django_user_model
):
    # Seeding and the trail read the same setting when they run: members of the renamed group
    # are FINANCE, not USER (the name used to be read once, at import, by the trail alone).
    settings.AUDIT_FINANCE_GROUP = "Controllers"
    roles_seed()
    controllers = Group.objects.get(name="Controllers")
    assert granted(controllers) == set(FINANCE.permissions)
    user = django_user_model.objects.create_user("carla", is_staff=True)
    user.groups.add(controllers)
    assert actor_snapshot(context.Actor(kind="user", user_id=user.pk)).role == ActorRole.FINANCE


@pytest.mark.django_db
def test_staff_in_a_group_renamed_by_hand_are_recorded_as_staff_never_as_users(
    django_user_model, caplog
):
    support = Group.objects.get(name="Support")
    support.name = "Helpdesk"  # renamed in the admin; migrate will seed a new, empty Support
    support.save()
    user = member(django_user_model, "Helpdesk")
    snapshot = actor_snapshot(context.Actor(kind="user", user_id=user.pk))
    assert snapshot.role == ActorRole.STAFF
    customer = member(django_user_model, "Newsletter", is_staff=False)
    assert actor_snapshot(context.Actor(kind="user", user_id=customer.pk)).role == ActorRole.USER


def test_every_role_names_an_actor_role_the_trail_knows():
    from audit.checks import staff_roles_map_to_trail_roles

    assert staff_roles_map_to_trail_roles(None) == []
    assert {role.audit_role for role in ROLES} <= set(ActorRole.values)


def test_the_check_names_a_registry_role_the_trail_does_not_know(monkeypatch):
    from dataclasses import replace

    from audit.checks import staff_roles_map_to_trail_roles
    from staff import roles

    monkeypatch.setattr(roles, "ROLES", (replace(roles.SUPPORT, audit_role="HELPDESK"),))
    [error] = staff_roles_map_to_trail_roles(None)
    assert (error.id, error.level) == ("audit.E003", checks.ERROR)
    assert "HELPDESK" in error.msg


def test_role_keys_and_groups_are_unique():
    assert len({role.key for role in ROLES}) == len(ROLES)
    assert len({role.default_group for role in ROLES}) == len(ROLES)
