"""Access events in the trail: sign-ins, failures, lockouts, second factors and role changes."""

import json

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from audit.verification import chain_verify
from staff import services as staff_services
from tests.staff_login import current_code

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple-42"
WRONG_PASSWORD = "Wr0ng-but-secret-passw0rd"


def rows(action: str):
    # Newest first, by insertion: rows are not sealed (no sequence yet) inside the test.
    return list(AuditEvent.objects.filter(action=action).order_by("-id"))


def only(action: str) -> AuditEvent:
    found = rows(action)
    assert len(found) == 1, f"{action}: {len(found)} rows"
    return found[0]


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(username="sid", password=PASSWORD, is_staff=True)


def sign_in(client, username, password):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def test_successful_sign_in_is_recorded_once_with_the_user_as_actor(client, staff):
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    assert sign_in(client, "sid", PASSWORD).status_code == 302
    row = only("auth.login.succeeded")
    assert (row.outcome, row.actor_type, row.actor_id, row.actor_name) == (
        "success",
        "user",
        str(staff.pk),
        "sid",
    )
    assert (row.target_type, row.target_id) == ("user", str(staff.pk))
    assert row.ip == "127.0.0.1"


def test_failed_sign_in_names_a_real_account_but_never_keeps_the_password(client, staff):
    assert sign_in(client, "sid", WRONG_PASSWORD).status_code == 200
    row = only("auth.login.failed")
    assert (row.outcome, row.actor_id, row.actor_name) == ("failure", str(staff.pk), "sid")
    assert not rows("auth.login.succeeded")
    stored = json.dumps(AuditEvent.objects.values().get(pk=row.pk), default=str)
    assert WRONG_PASSWORD not in stored and "password" not in stored


def test_failed_sign_in_for_an_unknown_name_keeps_no_trace_of_what_was_typed(client, staff):
    # People type their password into the username box: an unknown name is never stored.
    typed = "hunter2-typed-in-the-wrong-box"
    sign_in(client, typed, WRONG_PASSWORD)
    row = only("auth.login.failed")
    assert (row.outcome, row.actor_id, row.target_id) == ("failure", "", "")
    stored = json.dumps(AuditEvent.objects.values().get(pk=row.pk), default=str)
    assert typed not in stored and WRONG_PASSWORD not in stored


def test_lockout_is_recorded_after_the_failure_limit(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        sign_in(client, "sid", WRONG_PASSWORD)
    locked = only("auth.login.locked_out")
    assert (locked.outcome, locked.actor_name, locked.ip) == ("failure", "sid", "127.0.0.1")
    assert len(rows("auth.login.failed")) == 3
    # Even the right password is refused now, and that attempt is a lockout again.
    assert sign_in(client, "sid", PASSWORD).status_code == 429
    assert len(rows("auth.login.locked_out")) == 2
    assert not rows("auth.login.succeeded")


def test_enrolment_through_the_admin_is_recorded_with_its_actor(client, staff):
    client.force_login(staff)
    client.get("/admin/2fa/enroll/")  # creates the pending authenticator
    device = TOTPDevice.objects.get(user=staff, confirmed=False)
    response = client.post("/admin/2fa/enroll/", {"token": current_code(device), "next": "/"})
    assert response.status_code == 200 and b"backup" in response.content.lower()
    row = only("auth.second_factor.enrolled")
    assert (row.actor_id, row.target_id, row.reason) == (str(staff.pk), str(staff.pk), "enrolment")


def test_a_failed_enrolment_records_nothing(client, staff):
    client.force_login(staff)
    client.get("/admin/2fa/enroll/")
    client.post("/admin/2fa/enroll/", {"token": "000000", "next": "/"})
    assert not rows("auth.second_factor.enrolled")


def test_reset_by_command_is_recorded_with_reason(staff):
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    call_command("staff_2fa_reset", "sid", reason="phone lost on the train")
    row = only("auth.second_factor.reset")
    assert (row.actor_type, row.target_id, row.reason) == (
        "system",
        str(staff.pk),
        "phone lost on the train",
    )
    assert row.meta == {"user_id": staff.pk}


def test_group_changes_from_either_side_are_recorded_with_the_names(staff):
    finance, support = Group.objects.get(name="Finance"), Group.objects.get(name="Support")
    billing_admin = Group.objects.get(name="Billing admin")
    staff.groups.add(finance, billing_admin)
    support.user_set.add(staff)
    staff.groups.remove(finance)
    staff.groups.clear()
    details = [row.target_repr for row in reversed(rows("auth.role.changed"))]
    assert details == [
        "user sid: groups added Billing admin, Finance",
        "user sid: groups added Support",
        "user sid: groups removed Finance",
        "user sid: groups removed Billing admin, Support",
    ]
    row = rows("auth.role.changed")[0]
    assert row.meta == {
        "user_id": staff.pk,
        "changed_fields": ["groups"],
        "groups_before": ["Billing admin", "Support"],
        "groups_after": [],
    }
    assert row.target_id == str(staff.pk)


def test_adding_a_group_a_user_already_has_records_nothing(staff):
    finance = Group.objects.get(name="Finance")
    staff.groups.add(finance)
    staff.groups.add(finance)
    assert len(rows("auth.role.changed")) == 1


def test_superuser_and_staff_flags_are_recorded_when_they_change(staff):
    staff.is_superuser = True
    staff.save()
    row = only("auth.role.changed")
    assert row.target_repr == "user sid: is_superuser False -> True"
    assert row.meta == {"user_id": staff.pk, "changed_fields": ["is_superuser"]}
    staff.is_staff = False
    staff.is_active = False
    staff.save(update_fields=["is_staff", "is_active"])
    assert rows("auth.role.changed")[0].meta["changed_fields"] == ["is_staff", "is_active"]


def test_saving_without_a_role_change_records_nothing(staff, django_assert_max_num_queries):
    staff.first_name = "Sid"
    staff.save()
    # A sign-in saves last_login only: no extra query for the flags.
    with django_assert_max_num_queries(1):
        staff.save(update_fields=["last_login"])
    assert not rows("auth.role.changed")


def test_a_rolled_back_role_change_leaves_no_row(staff):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        staff.groups.add(Group.objects.get(name="Finance"))
        raise RuntimeError("the admin form failed after the change")
    assert not rows("auth.role.changed")


def test_the_chain_verifies_after_access_events(client, staff):
    staff.groups.add(Group.objects.get(name="Finance"))
    sign_in(client, "sid", WRONG_PASSWORD)
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    sign_in(client, "sid", PASSWORD)
    staff_services.second_factor_reset(user=staff, reason="new phone")
    assert AuditEvent.objects.count() == 4
    assert chain_verify().ok
