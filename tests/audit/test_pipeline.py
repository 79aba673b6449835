"""End to end: signed webhooks through billing's endpoint, its (eager) Celery task and
entitlements, to a trail that names the Stripe event of every row and verifies."""

import pytest

from audit.models import AuditEvent
from audit.verification import chain_verify
from billing import services as billing_services
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
    # Written in the event's transaction, in the order the receivers ran: entitlements first.
    assert max(row.sequence for row in grants) < subscription.sequence
    assert chain_verify().ok
