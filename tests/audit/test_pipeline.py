"""End to end: signed webhooks through billing's endpoint, its (eager) Celery task and
entitlements, to a trail that names the Stripe event of every row and verifies."""

import pytest

from audit.models import AuditEvent
from audit.verification import chain_verify
from billing import services as billing_services
from billing.models import StripeEvent
from config.context import Actor
from tests.audit_trail import audit_seal
from tests.entitlements.conftest import Customer
from tests.stripe_fixtures import signed

SECRET = "whsec_" + "c" * 32
PREMIUM = {"signals_basic", "signals_premium", "advanced_analytics"}


@pytest.fixture
def deliver(client, db, django_capture_on_commit_callbacks):
    endpoint = billing_services.webhook_endpoint_configure(secrets=[SECRET], tolerance=300, url="")

    def post(payload):
        body, signature = signed(payload, SECRET)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/stripe/webhook/{endpoint.djstripe_uuid}/",
                data=body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=signature,
            )
        assert response.status_code == 200, response.content
        return payload

    return post


def test_paid_subscription_leaves_a_verifiable_trail(deliver, django_user_model):
    user = django_user_model.objects.create_user("trader", "trader@example.com")
    customer = Customer()
    checkout = deliver(customer.checkout(user))
    created = deliver(customer.subscription("created", plan="premium"))

    payment = AuditEvent.objects.get(action="billing.payment.completed")
    assert (payment.stripe_event_id, payment.actor_type) == (checkout["id"], "stripe")
    subscription = AuditEvent.objects.get(action="billing.subscription.created")
    assert subscription.stripe_event_id == created["id"]
    grants = AuditEvent.objects.filter(action="entitlements.grant.created")
    assert {row.meta["feature"] for row in grants} == PREMIUM
    assert {row.stripe_event_id for row in grants} == {created["id"]}
    assert {row.meta["user_id"] for row in grants} == {user.pk}
    assert all(row.meta["plan"] == "premium" for row in grants)
    # Cause before effect: the event's own row precedes the grants it caused (same transaction).
    audit_seal()
    subscription.refresh_from_db()
    assert subscription.sequence < min(row.sequence for row in grants.all())
    assert chain_verify().ok


def test_a_reprocessed_dead_letter_precedes_its_event_and_what_that_causes(
    deliver, django_user_model, django_capture_on_commit_callbacks
):
    user = django_user_model.objects.create_user("trader", "trader@example.com")
    staff = django_user_model.objects.create_superuser("olga", "olga@example.com", "pw")
    customer = Customer()
    deliver(customer.checkout(user))
    payload = customer.subscription("created", plan="premium")
    StripeEvent.objects.create(
        event_id=payload["id"], type=payload["type"], created=payload["created"],
        customer_id=customer.customer_id, payload=payload, status=StripeEvent.Status.DEAD,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):  # requeued and applied (eager)
        billing_services.dead_letter_reprocess(
            event_id=payload["id"], actor=Actor(kind="user", user_id=staff.pk), reason="fixed"
        )
    audit_seal()

    caused = AuditEvent.objects.filter(stripe_event_id=payload["id"]).order_by("sequence")
    assert [row.action for row in caused][:2] == [
        "billing.deadletter.reprocessed",
        "billing.subscription.created",
    ]
    assert {row.action for row in caused[2:]} == {"entitlements.grant.created"}
    assert len(caused) == 2 + len(PREMIUM)
    assert chain_verify().ok
