"""Finance sees everything and changes nothing; nobody changes the trail through the admin."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from djstripe.models import Event, WebhookEventTrigger

from audit.models import AuditEvent
from audit.services import Target, audit_event_record
from config.context import Actor
from tests.staff_login import staff_login


@pytest.fixture
def events(trail):
    return trail(3)


def test_finance_group_is_seeded_with_view_permissions_only(db):
    codenames = set(
        Group.objects.get(name="Finance").permissions.values_list("codename", flat=True)
    )
    assert {
        "view_auditevent",
        "view_auditcheckpoint",
        "view_event",
        "view_webhookeventtrigger",
    } <= (codenames)
    assert {"view_entitlement", "view_stripeevent"} <= codenames
    # Viewing only, plus working and signing off the daily review and conducting the access
    # review (through their services).
    reviewing = {"sign_off_dailyreview", "conduct_accessreview"}
    assert reviewing <= codenames
    assert "view_accessreview" in codenames
    assert all(codename.startswith("view_") for codename in codenames - reviewing)


def test_finance_group_seed_is_idempotent(db):
    from staff.roles import roles_seed

    before = set(Group.objects.get(name="Finance").permissions.all())
    roles_seed()
    roles_seed()
    assert set(Group.objects.get(name="Finance").permissions.all()) == before
    assert Group.objects.filter(name="Finance").count() == 1


def test_migrate_removes_permissions_given_to_finance_by_hand(db):
    from django.core.management import call_command

    finance = Group.objects.get(name="Finance")
    seeded = set(finance.permissions.values_list("codename", flat=True))
    extra = Permission.objects.filter(
        codename__in=["change_entitlement", "delete_auditevent", "add_user"]
    )
    assert extra.count() == 3
    finance.permissions.add(*extra)
    call_command("migrate", verbosity=0, interactive=False)
    assert set(finance.permissions.values_list("codename", flat=True)) == seeded


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:audit_auditevent_changelist",
        "admin:audit_auditcheckpoint_changelist",
        "admin:audit_dashboard",
        "admin:djstripe_event_changelist",
        "admin:djstripe_webhookeventtrigger_changelist",
        "admin:billing_stripeevent_changelist",
        "admin:entitlements_entitlement_changelist",
        "admin:entitlements_plan_changelist",
    ],
)
def test_finance_can_view_the_console(finance_client, events, url_name):
    assert finance_client.get(reverse(url_name)).status_code == 200


def test_finance_sees_a_row_and_whether_its_link_verifies(finance_client, events):
    response = finance_client.get(reverse("admin:audit_auditevent_change", args=[events[1].pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "verifies: hash matches" in body
    assert events[1].hash in body
    assert "&quot;amount&quot;: 1900" in body


@pytest.mark.parametrize("who", ["finance", "superuser"])
def test_nobody_can_add_change_or_delete_audit_rows(client, finance, admin_user, events, who):
    staff_login(client, finance if who == "finance" else admin_user)
    sequence = events[0].sequence
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert client.post(reverse("admin:audit_auditevent_add"), {}).status_code == 403
    change = reverse("admin:audit_auditevent_change", args=[sequence])
    assert client.post(change, {"reason": "edited"}).status_code == 403
    delete = reverse("admin:audit_auditevent_delete", args=[sequence])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    response = client.get(reverse("admin:audit_auditevent_changelist"))
    assert list(response.context["action_form"].fields["action"].choices) == [
        ("", "---------"),
        ("export_selected", "Export selected rows as CSV"),
    ]
    bulk = client.post(
        reverse("admin:audit_auditevent_changelist"),
        {"action": "delete_selected", "_selected_action": [sequence], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert AuditEvent.objects.get(sequence=sequence).reason == ""
    assert AuditEvent.objects.filter(sequence=sequence).exists()


@pytest.mark.parametrize("model", [Event, WebhookEventTrigger])
def test_djstripe_event_log_is_read_only_without_actions(admin_client, model):
    opts = model._meta
    changelist = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    assert changelist.context["action_form"] is None
    assert (
        admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code
        == 403
    )


def test_viewing_is_itself_audited_once_per_view(finance_client, finance, events):
    finance_client.get(reverse("admin:audit_auditevent_changelist"))
    finance_client.get(reverse("admin:audit_auditevent_change", args=[events[0].pk]))
    views = AuditEvent.objects.filter(action="audit.trail.viewed").order_by("id")
    assert [(v.target_type, v.actor_id, v.actor_name, v.actor_role) for v in views] == [
        ("audit_trail", str(finance.pk), "fiona", "FINANCE"),
        ("audit_event", str(finance.pk), "fiona", "FINANCE"),
    ]
    assert views[1].target_id == str(events[0].pk)
    assert views[0].request_id and views[0].request_id != views[1].request_id


def test_staff_without_the_view_permission_is_refused(client, django_user_model, events):
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    staff_login(client, clerk)
    for name in ("admin:audit_auditevent_changelist", "admin:audit_dashboard"):
        assert client.get(reverse(name)).status_code == 403
    response = client.get(reverse("admin:audit_auditevent_export"))
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert not AuditEvent.objects.filter(action__startswith="audit.").exists()


def test_search_is_exact_on_indexed_columns(finance_client, trail, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    trail(2)
    wanted = audit_event_record(
        action="billing.payment.refunded",
        actor=Actor(kind="stripe"),
        target=Target("charge", "ch_3MmlLrLkdIwHu7ix0snN0B15", "charge"),
        stripe_event_id="evt_refund_1",
    )
    with CaptureQueriesContext(connection) as queries:
        response = finance_client.get(
            reverse("admin:audit_auditevent_changelist"), {"q": "ch_3MmlLrLkdIwHu7ix0snN0B15"}
        )
    assert [row.sequence for row in response.context["cl"].result_list] == [wanted.sequence]
    listing = [q["sql"] for q in queries.captured_queries if "audit_auditevent" in q["sql"]]
    assert not any("UPPER(" in sql or " LIKE " in sql for sql in listing)
    partial = finance_client.get(reverse("admin:audit_auditevent_changelist"), {"q": "ch_3Mml"})
    assert list(partial.context["cl"].result_list) == []


def test_list_refuses_lookups_no_index_serves_and_sorts_only_by_sequence(finance_client, trail):
    trail(3)
    changelist = reverse("admin:audit_auditevent_changelist")
    for params in ({"meta__icontains": "1900"}, {"reason__contains": "x"}):
        response = finance_client.get(changelist, params)
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
    by_range = finance_client.get(changelist, {"sequence__gte": "2", "sequence__lte": "3"})
    assert [row.sequence for row in by_range.context["cl"].result_list] == [3, 2]
    # Sorting by another column (here actor_name, unindexed) is ignored: newest first stays
    # (rows 1-2 are fiona's role change and sign-in; the audit.trail.viewed row of the previous
    # page view is not sealed yet: rows waiting for the sealer are listed first).
    sorted_attempt = finance_client.get(changelist, {"o": "-6"})  # -actor_name
    listed = sorted_attempt.context["cl"].result_list
    assert [row.sequence for row in listed] == [None, 5, 4, 3, 2, 1]
    assert listed[0].action == "audit.trail.viewed"
