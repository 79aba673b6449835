"""billing's signals become audit rows, in the sender's transaction; payloads are Stripe's own."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.models import AuditEvent
from billing import services as billing_services
from billing import signals as billing_signals
from billing import stripe_events
from billing.models import StripeEvent
from billing.rejections import rejection_counts_flush
from config.context import Actor, acting_as
from tests.stripe_fixtures import event, resource, signed, unique_id


def process(payload: dict) -> None:
    billing_signals.stripe_event_applying.send(
        sender=StripeEvent, billing_event=stripe_events.parse(payload)
    )


def stripe_object(kind: str) -> dict:
    """Stripe's example object with the fields the audit row reads set for the scenario."""
    customer = unique_id("cus")
    if kind == "checkout.session":
        return resource(
            kind, id=unique_id("cs"), customer=customer, amount_total=1900, currency="usd"
        )
    if kind == "invoice":
        return resource(
            kind, id=unique_id("in"), customer=customer, amount_paid=1900, amount_due=1900,
            currency="usd", status="paid",
        )  # fmt: skip
    if kind == "charge":
        return resource(
            kind, id=unique_id("ch"), customer=customer, amount=1900, amount_refunded=1900,
            currency="usd", status="succeeded",
        )  # fmt: skip
    if kind == "dispute":
        return resource(kind, id=unique_id("dp"), charge=unique_id("ch"), amount=1900)
    return resource(kind, id=unique_id("sub"), customer=customer, status="active")


@pytest.mark.parametrize(
    ("event_type", "kind", "action", "outcome"),
    [
        ("checkout.session.completed", "checkout.session", "billing.payment.completed", "success"),
        ("invoice.paid", "invoice", "billing.invoice.paid", "success"),
        ("invoice.payment_failed", "invoice", "billing.payment.failed", "failure"),
        ("charge.refunded", "charge", "billing.payment.refunded", "success"),
        ("charge.dispute.created", "dispute", "billing.payment.disputed", "failure"),
        (
            "customer.subscription.created",
            "subscription",
            "billing.subscription.created",
            "success",
        ),
        (
            "customer.subscription.updated",
            "subscription",
            "billing.subscription.updated",
            "success",
        ),
        (
            "customer.subscription.deleted",
            "subscription",
            "billing.subscription.deleted",
            "success",
        ),
    ],
)
def test_payment_events_are_recorded(db, event_type, kind, action, outcome):
    obj = stripe_object(kind)
    payload = event(event_type, obj)
    process(payload)
    row = AuditEvent.objects.get()
    assert (row.action, row.outcome, row.stripe_event_id) == (action, outcome, payload["id"])
    assert (row.actor_type, row.actor_role, row.actor_name) == ("stripe", "SYSTEM", "stripe")
    assert (row.target_type, row.target_id) == (obj["object"], obj["id"])
    assert row.meta["event_type"] == event_type
    for key in ("customer", "amount_total", "amount_paid", "amount_refunded", "currency"):
        if key in obj and obj[key] is not None:
            assert row.meta[key] == obj[key]


def test_unknown_event_types_are_not_recorded(db):
    process(event("customer.updated", resource("customer", id=unique_id("cus"))))
    assert not AuditEvent.objects.exists()


def committed(action: str) -> float:
    labels = {"action": action}
    return REGISTRY.get_sample_value("tollgate_audit_events_total", labels) or 0.0


def test_row_rolls_back_with_the_change_it_records(db, django_capture_on_commit_callbacks):
    before = committed("billing.invoice.paid")
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        process(event("invoice.paid", stripe_object("invoice")))
        raise RuntimeError("the event's processing failed after the receivers ran")
    assert not AuditEvent.objects.exists()
    assert committed("billing.invoice.paid") == before
    with django_capture_on_commit_callbacks(execute=True):
        process(event("invoice.paid", stripe_object("invoice")))
    assert committed("billing.invoice.paid") == before + 1


def test_meta_keeps_no_card_data_names_emails_or_secrets(db):
    charge = stripe_object("charge")
    charge["billing_details"].update(email="jenny@example.com", name="Jenny Rosen")
    charge["receipt_email"] = "jenny@example.com"
    charge["metadata"] = {"api_key": "sk_live_51abcdef", "note": "call Jenny"}
    charge["payment_intent"] = {"id": "pi_123", "client_secret": "pi_123_secret_456"}
    charge["customer"] = "jenny@example.com"  # a value in an allowed key that is no id
    charge["status"] = "pi_123_secret_456"
    process(event("charge.refunded", charge))
    stored = json.dumps(AuditEvent.objects.get().meta)
    for leaked in ("jenny", "Jenny", "4242", "visa", "AOB934RVNwzk6xtn", "sk_live", "secret", "@"):
        assert leaked not in stored
    assert json.loads(stored)["payment_intent"] == "pi_123"
    assert json.loads(stored)["amount_refunded"] == 1900


def test_free_text_keeps_no_stripe_keys_or_bearer_tokens(db):
    # A reason typed by staff, a sender's user agent, a target's label: all stored for years.
    from audit.services import Target, audit_event_record

    row = audit_event_record(
        action="audit.chain.verified",
        reason="ticket 5, the customer pasted sk_live_51Hxyzabc in the chat",
        user_agent="curl/8 Bearer eyJhbGciOi.payload.sig",
        target=Target("group", "1", "group pi_3Mtw_secret_YrKJ and whsec_abc123"),
    )
    row.refresh_from_db()
    stored = row.reason + row.user_agent + row.target_repr
    # The same shapes as meta's (audit/meta.py): a client secret too, not only keys.
    for leaked in ("sk_live_51Hxyzabc", "eyJhbGciOi", "whsec_abc123", "_secret_YrKJ"):
        assert leaked not in stored
    assert row.reason == "ticket 5, the customer pasted [redacted] in the chat"
    assert row.target_repr == "group [redacted] and [redacted]"


def test_work_done_on_someones_behalf_is_attributed_to_them(db, django_user_model):
    # Inline, in the caller's context; through a real Celery worker, the same attribution is
    # tested in tests/billing/test_worker.py.
    staff = django_user_model.objects.create_user("sam", "sam@example.com", is_staff=True)
    staff.groups.add(Group.objects.get_or_create(name="Billing admin")[0])
    with acting_as(Actor(kind="user", user_id=staff.pk), request_id="req-staff-1"):
        process(event("invoice.paid", stripe_object("invoice")))
    row = AuditEvent.objects.get(action="billing.invoice.paid")
    assert (row.actor_type, row.actor_id, row.actor_name) == ("user", str(staff.pk), "sam")
    assert (row.actor_role, row.request_id) == ("ADMIN", "req-staff-1")


def test_rejected_webhooks_are_recorded_once_per_address_problem_and_minute(client, db):
    endpoint = billing_services.webhook_endpoint_configure(
        secrets=["whsec_" + "a" * 32], tolerance=300, url=""
    )
    payload = event("invoice.paid", stripe_object("invoice"))
    body, signature = signed(payload, "whsec_" + "b" * 32)  # signed with the wrong secret
    for _ in range(3):
        response = client.post(
            f"/stripe/webhook/{endpoint.djstripe_uuid}/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature,
            HTTP_USER_AGENT="Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        assert response.status_code == 400
    # Nothing is written per request; the beat task reports the closed minute.
    assert not AuditEvent.objects.filter(action="billing.webhook.rejected").exists()
    rejection_counts_flush(now=timezone.now() + timedelta(minutes=3))
    row = AuditEvent.objects.get(action="billing.webhook.rejected")
    assert (row.outcome, row.actor_type, row.ip) == ("failure", "stripe", "127.0.0.1")
    problem = response.json()["type"].rsplit("/", 1)[1]
    assert {key: row.meta[key] for key in ("problem", "http_status", "count")} == {
        "problem": problem,
        "http_status": 400,
        "count": 3,
    }
    assert signature not in json.dumps(row.meta) + row.reason


def test_staff_reprocessing_a_dead_letter_is_recorded(db, django_user_model):
    staff = django_user_model.objects.create_superuser("olga", "olga@example.com", "pw")
    payload = event("invoice.payment_failed", stripe_object("invoice"))
    StripeEvent.objects.create(
        event_id=payload["id"], type=payload["type"], created=payload["created"],
        payload=payload, status=StripeEvent.Status.DEAD,
    )  # fmt: skip
    billing_services.dead_letter_reprocess(
        event_id=payload["id"],
        actor=Actor(kind="user", user_id=staff.pk),
        reason="card updated, ticket 123",
    )
    row = AuditEvent.objects.get(action="billing.deadletter.reprocessed")
    assert (row.actor_id, row.actor_name, row.actor_role) == (str(staff.pk), "olga", "OWNER")
    assert (row.stripe_event_id, row.reason) == (payload["id"], "card updated, ticket 123")
    assert row.meta == {"event_type": "invoice.payment_failed"}
