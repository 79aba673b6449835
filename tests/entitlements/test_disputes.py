"""A dispute names only its charge: it is never lost while that charge's customer is unknown
(issue 4). Parked, then applied by the first payload naming the customer, or by the beat retry
against dj-stripe's Charge mirror."""

import pytest
from prometheus_client import REGISTRY

from audit.models import AuditEvent
from billing.models import ChargeCustomer
from entitlements import stripe_sync, tasks
from entitlements.models import CustomerReversal, Entitlement, ParkedEvent
from tests.entitlements.conftest import T0, deliver
from tests.stripe_fixtures import event, resource, unique_id

pytestmark = pytest.mark.django_db

PREMIUM = {"signals_basic", "signals_premium", "advanced_analytics"}


def live(user) -> set[str]:
    rows = Entitlement.objects.filter(user=user, revoked_at__isnull=True)
    return set(rows.values_list("feature__lookup_key", flat=True))


def parked_disputes_counted() -> float:
    labels = {"event_type": "charge.dispute.created"}
    return REGISTRY.get_sample_value("tollgate_entitlement_unresolved_events_total", labels) or 0.0


def revoked_by(event_id: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action="entitlements.grant.revoked", stripe_event_id=event_id)
    )


@pytest.fixture
def subscribed(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription())
    assert live(user) == PREMIUM
    return user


def test_dispute_before_its_charge_is_parked_then_applied_by_the_charge_event(
    subscribed, customer, sent
):
    charge_id = unique_id("ch")
    dispute = customer.dispute(charge_id, created=T0 + 30)
    counted = parked_disputes_counted()
    deliver(dispute)
    deliver(dispute)  # a duplicate delivery parks nothing more
    assert parked_disputes_counted() == counted + 1
    parked = ParkedEvent.objects.get(stripe_charge_id=charge_id)
    assert (parked.event_id, parked.stripe_customer_id, parked.applied_at) == (
        dispute["id"],
        "",
        None,
    )
    assert live(subscribed) == PREMIUM
    assert not revoked_by(dispute["id"])

    charge = customer.charge(charge_id, created=T0 + 20)
    deliver(charge)
    assert live(subscribed) == set()
    parked.refresh_from_db()
    assert parked.stripe_customer_id == customer.customer_id
    assert parked.applied_at is not None
    assert ChargeCustomer.objects.get(stripe_charge_id=charge_id).learnt_from == charge["id"]
    audited = revoked_by(dispute["id"])
    assert len(audited) == len(PREMIUM)
    assert sum(1 for name, _ in sent if name == "revoked") == len(PREMIUM)

    # Delivered again after it was applied: nothing is revoked or audited twice.
    deliver(dispute)
    deliver(customer.charge(charge_id, kind="updated", created=T0 + 40))
    assert len(revoked_by(dispute["id"])) == len(PREMIUM)
    assert sum(1 for name, _ in sent if name == "revoked") == len(PREMIUM)


def _payment_intent(customer, charge_id):
    intent = resource(
        "payment_intent",
        id=unique_id("pi"),
        customer=customer.customer_id,
        latest_charge=charge_id,
        status="succeeded",
    )
    return event("payment_intent.succeeded", intent, created=T0 + 10)


def _invoice_with_payments(customer, charge_id):
    paid = customer.invoice("paid", created=T0 + 10)
    payment = resource(
        "invoice_payment",
        id=unique_id("inpay"),
        invoice=paid["data"]["object"]["id"],
        payment={"type": "charge", "charge": charge_id},
        status="paid",
    )
    paid["data"]["object"]["payments"] = {"object": "list", "data": [payment], "has_more": False}
    return paid


@pytest.mark.parametrize("naming", [_payment_intent, _invoice_with_payments])
def test_other_payloads_naming_charge_and_customer_apply_the_dispute(subscribed, customer, naming):
    charge_id = unique_id("ch")
    dispute = customer.dispute(charge_id, created=T0 + 30)
    deliver(dispute)
    assert live(subscribed) == PREMIUM
    deliver(naming(customer, charge_id))
    assert live(subscribed) == set()
    assert ChargeCustomer.objects.get(stripe_charge_id=charge_id).stripe_customer_id == (
        customer.customer_id
    )


def test_a_late_dispute_still_loses_to_a_newer_paid_invoice(subscribed, customer):
    charge_id = unique_id("ch")
    deliver(customer.dispute(charge_id, created=T0 + 30))
    deliver(customer.invoice("paid", created=T0 + 60))
    deliver(customer.charge(charge_id, created=T0 + 20))
    assert ParkedEvent.objects.get(stripe_charge_id=charge_id).applied_at is not None
    assert live(subscribed) == PREMIUM


def test_dispute_before_checkout_subscription_and_charge_reverses_the_subscription(
    make_user, customer
):
    user = make_user()
    charge_id = unique_id("ch")
    deliver(customer.dispute(charge_id, created=T0 + 30))
    deliver(customer.charge(charge_id, created=T0 + 20))
    # Recorded against the customer as soon as its charge's customer is known ...
    parked = ParkedEvent.objects.get(stripe_charge_id=charge_id)
    assert parked.stripe_customer_id == customer.customer_id
    assert parked.applied_at is not None
    reversal = CustomerReversal.objects.get(event_id=parked.event_id)
    assert (reversal.stripe_customer_id, reversal.kind) == (customer.customer_id, "dispute")
    # ... so the subscription (created before the dispute) that appears afterwards grants nothing.
    deliver(customer.checkout(user))
    deliver(customer.subscription())
    assert live(user) == set()


def test_beat_retry_resolves_a_parked_dispute_through_the_djstripe_mirror(
    subscribed, customer, settings
):
    from djstripe.models import Charge
    from djstripe.models import Customer as DjCustomer

    charge_id = unique_id("ch")
    dispute = customer.dispute(charge_id, created=T0 + 30)
    deliver(dispute)
    assert tasks.retry_parked_disputes.delay().get() == 0  # the mirror does not know it yet
    assert live(subscribed) == PREMIUM

    dj_customer = DjCustomer.objects.create(id=customer.customer_id, livemode=False)
    Charge.objects.create(
        id=charge_id,
        customer=dj_customer,
        amount=2000,
        currency="usd",
        status="succeeded",
        livemode=False,
    )
    assert tasks.retry_parked_disputes.delay().get() == 1
    assert live(subscribed) == set()
    assert len(revoked_by(dispute["id"])) == len(PREMIUM)
    assert ChargeCustomer.objects.get(stripe_charge_id=charge_id).learnt_from == "djstripe.charge"
    assert tasks.retry_parked_disputes.delay().get() == 0

    entry = settings.CELERY_BEAT_SCHEDULE["entitlements-retry-parked-disputes"]
    assert entry["task"] == tasks.retry_parked_disputes.name


def test_dispute_revocation_off_parks_nothing(subscribed, customer, settings):
    settings.ENTITLEMENTS_REVOKE_ON_DISPUTE = False
    charge_id = unique_id("ch")
    deliver(customer.dispute(charge_id, created=T0 + 30))
    deliver(customer.charge(charge_id, created=T0 + 20))
    assert not ParkedEvent.objects.filter(stripe_charge_id=charge_id).exists()
    assert live(subscribed) == PREMIUM


@pytest.mark.django_db(transaction=True)
def test_beat_retry_waits_for_the_disputed_customers_events(customer):
    """The beat retry applies a parked dispute under its customer's lock, as billing's task
    applies any dispute: never while an event of that customer is mid-way."""
    import threading

    from django.db import connection

    from tests.billing.test_serialization import customer_lock_held
    from tests.servers import require_postgres

    require_postgres(connection)
    charge_id = unique_id("ch")
    deliver(customer.dispute(charge_id, created=T0 + 30))
    # Learnt by an event applied concurrently, after the dispute was parked.
    ChargeCustomer.objects.create(
        stripe_charge_id=charge_id, stripe_customer_id=customer.customer_id, learnt_from="evt_x"
    )
    holder, release = customer_lock_held(customer.customer_id)
    applied = []

    def retry():
        # What the beat task runs (its Celery wrapper cannot be waited for from a thread).
        try:
            applied.append(stripe_sync.parked_disputes_retry())
        finally:
            connection.close()

    retrying = threading.Thread(target=retry)
    retrying.start()
    retrying.join(timeout=1)
    assert retrying.is_alive() and applied == []  # waits for the customer's event
    release.set()
    holder.join(timeout=10)
    retrying.join(timeout=10)
    assert applied == [1]
    assert ParkedEvent.objects.get(stripe_charge_id=charge_id).applied_at is not None
