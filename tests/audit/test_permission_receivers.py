"""Permission and membership edits in the trail: group permissions, user permissions, groups.

Each change is one row with the set before and after, the acting admin as actor, written in the
transaction of the change; from either side of the relation, and for .set() and .clear().
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from audit.models import AuditEvent
from audit.verification import chain_verify
from config.context import Actor, acting_as

pytestmark = pytest.mark.django_db
GRANT = "entitlements.grant_entitlement"
REVOKE = "entitlements.revoke_entitlement"


def perm(name: str) -> Permission:
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def rows(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


@pytest.fixture
def finance():
    return Group.objects.get(name="Finance")


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_user("ada", password="pw", is_staff=True)


@pytest.fixture
def clerk(django_user_model):
    return django_user_model.objects.create_user("carl", password="pw", is_staff=True)


def test_granting_finance_the_grant_permission_is_recorded_with_both_sets(finance, admin):
    before = sorted(f"{p.content_type.app_label}.{p.codename}" for p in finance.permissions.all())
    with acting_as(Actor(kind="user", user_id=admin.pk)):
        finance.permissions.add(perm(GRANT))
    [row] = rows("auth.group_permissions.changed")
    assert (row.actor_type, row.actor_id, row.actor_name) == ("user", str(admin.pk), "ada")
    assert (row.target_type, row.target_id) == ("group", str(finance.pk))
    assert row.target_repr == f"group Finance: + {GRANT}"
    assert row.meta["group_id"] == finance.pk
    assert row.meta["permissions_before"] == before
    assert row.meta["permissions_after"] == sorted([*before, GRANT])
    assert chain_verify().ok


def test_set_and_clear_of_group_permissions_are_recorded(finance):
    finance.permissions.set([perm(GRANT), perm(REVOKE)])
    finance.permissions.clear()
    recorded = rows("auth.group_permissions.changed")
    # set() removes the old ones, then adds the new: two rows; clear() one more.
    assert [row.meta["permissions_after"] for row in recorded] == [[], [GRANT, REVOKE], []]
    assert recorded[-1].meta["permissions_before"] == [GRANT, REVOKE]
    assert all(row.actor_type == "system" for row in recorded)


def test_a_permission_given_to_groups_from_the_permission_side_is_recorded_per_group(finance):
    support = Group.objects.get(name="Support")
    perm(GRANT).group_set.add(finance, support)  # Support has it already: no row for it
    [row] = rows("auth.group_permissions.changed")
    assert row.target_id == str(finance.pk)
    assert GRANT in row.meta["permissions_after"]
    assert GRANT not in row.meta["permissions_before"]
    perm(GRANT).group_set.clear()
    cleared = rows("auth.group_permissions.changed")[1:]
    assert sorted(row.target_id for row in cleared) == sorted([str(finance.pk), str(support.pk)])
    assert all(GRANT not in row.meta["permissions_after"] for row in cleared)


def test_a_permission_given_straight_to_a_user_is_recorded(clerk, admin):
    with acting_as(Actor(kind="user", user_id=admin.pk)):
        clerk.user_permissions.add(perm(GRANT))
        clerk.user_permissions.set([perm(REVOKE)])
        perm(REVOKE).user_set.clear()
    recorded = rows("auth.user_permissions.changed")
    assert [
        (row.meta["permissions_before"], row.meta["permissions_after"]) for row in recorded
    ] == [
        ([], [GRANT]),
        ([GRANT], []),
        ([], [REVOKE]),
        ([REVOKE], []),
    ]
    assert {(row.target_id, row.actor_name) for row in recorded} == {(str(clerk.pk), "ada")}
    assert recorded[0].target_repr == f"user carl: + {GRANT}"


def test_an_unchanged_set_records_nothing(finance, clerk):
    finance.permissions.add(*finance.permissions.all())
    clerk.user_permissions.remove(perm(GRANT))
    clerk.user_permissions.clear()
    assert not AuditEvent.objects.filter(action__endswith="permissions.changed").exists()


def test_group_membership_is_recorded_with_both_sets(clerk, finance):
    support = Group.objects.get(name="Support")
    clerk.groups.add(finance)
    support.user_set.add(clerk)
    support.user_set.clear()
    recorded = rows("auth.role.changed")
    assert [(row.meta["groups_before"], row.meta["groups_after"]) for row in recorded] == [
        ([], ["Finance"]),
        (["Finance"], ["Finance", "Support"]),
        (["Finance", "Support"], ["Finance"]),
    ]


def test_a_rolled_back_permission_change_leaves_no_row(finance):
    with pytest.raises(RuntimeError), transaction.atomic():
        finance.permissions.add(perm(GRANT))
        raise RuntimeError("the admin form failed after the change")
    assert not rows("auth.group_permissions.changed")


def test_migrate_seeding_the_role_groups_is_not_recorded(finance):
    from staff.roles import roles_seed

    finance.permissions.add(perm(GRANT))
    roles_seed()  # puts Finance back to its view permissions
    assert len(rows("auth.group_permissions.changed")) == 1
    assert GRANT not in {
        f"{p.content_type.app_label}.{p.codename}" for p in finance.permissions.all()
    }


def test_editing_a_group_in_the_admin_records_the_admin_as_actor(admin_client, admin_user, finance):
    wanted = [*finance.permissions.all(), perm(GRANT)]
    response = admin_client.post(
        f"/admin/auth/group/{finance.pk}/change/",
        {"name": "Finance", "permissions": [p.pk for p in wanted]},
    )
    assert response.status_code == 302
    [row] = rows("auth.group_permissions.changed")
    assert (row.actor_id, row.actor_role) == (str(admin_user.pk), "OWNER")
    assert GRANT in row.meta["permissions_after"] and GRANT not in row.meta["permissions_before"]
    assert row.request_id  # the admin request's id, like its log lines


def test_giving_a_user_a_permission_in_the_admin_is_recorded(admin_client, admin_user, clerk):
    page = admin_client.get(f"/admin/auth/user/{clerk.pk}/change/")
    form = page.context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name not in ("password", "groups", "user_permissions")
    }
    data.update(
        {
            "date_joined_0": clerk.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": clerk.date_joined.strftime("%H:%M:%S"),
            "user_permissions": [perm(GRANT).pk],
        }
    )
    data.pop("date_joined", None)
    data.pop("last_login", None)
    response = admin_client.post(f"/admin/auth/user/{clerk.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    [row] = rows("auth.user_permissions.changed")
    assert (row.actor_id, row.target_id) == (str(admin_user.pk), str(clerk.pk))
    assert row.meta["permissions_after"] == [GRANT]
