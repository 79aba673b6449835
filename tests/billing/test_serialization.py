"""Events of one Stripe customer never run at the same time; other customers' do. A dispute,
which names only its charge, is one of its charge's customer's events."""

import threading

import pytest
from django.db import connection, transaction

from billing import services
from billing.db import advisory_xact_lock
from billing.models import StripeEvent
from tests.billing.conftest import customer_event
from tests.servers import require_postgres
from tests.stripe_fixtures import event, resource, unique_id


def inbox_row(customer_id: str, payload: dict | None = None) -> StripeEvent:
    """The inbox row of an event as event_receive stores it (its serialization key included)."""
    payload = payload or customer_event("customer.updated", customer_id=customer_id)
    return StripeEvent.objects.create(
        event_id=payload["id"],
        type=payload["type"],
        created=payload["created"],
        customer_id=customer_id,
        payload=payload,
    )


def customer_lock_held(customer_id: str):
    """Stands in for another task of the customer that is mid-way through its transaction;
    returns (the holding thread, an Event that releases it)."""
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with transaction.atomic():
            advisory_xact_lock("apply", customer_id)
            locked.set()
            release.wait(timeout=30)
        connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(timeout=10)
    return holder, release


def apply_in_thread(row: StripeEvent, done: list) -> threading.Thread:
    def run():
        try:
            services.event_apply(event_id=row.event_id, customer_id=row.customer_id)
            done.append(row.customer_id)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_customer_lock_holds_back_only_that_customers_events(processed):
    require_postgres(connection)  # advisory locks are PostgreSQL's
    same, other = inbox_row("cus_busy"), inbox_row("cus_free")
    holder, release = customer_lock_held("cus_busy")
    done = []
    blocked = apply_in_thread(same, done)
    apply_in_thread(other, done).join(timeout=10)
    assert done == ["cus_free"]  # the other customer went through
    blocked.join(timeout=0.5)
    assert blocked.is_alive() and done == ["cus_free"]  # cus_busy waits for the lock
    release.set()
    holder.join(timeout=10)
    blocked.join(timeout=10)
    assert done == ["cus_free", "cus_busy"]
    assert [p["billing_event"].event_id for p in processed] == [other.event_id, same.event_id]
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"applied"}


@pytest.mark.django_db(transaction=True)
def test_a_dispute_waits_for_its_charges_customer(processed):
    """The dispute names its charge by id only; the charge's customer is known from an applied
    charge event. Applied while a subscription event of that customer is mid-way, the dispute
    waits for it, as README and docs/webhooks.md promise."""
    require_postgres(connection)
    customer_id, charge_id = unique_id("cus"), unique_id("ch")
    charge = event("charge.succeeded", resource("charge", id=charge_id, customer=customer_id))
    services.event_apply(event_id=inbox_row(customer_id, charge).event_id, customer_id=customer_id)
    dispute = event("charge.dispute.created", resource("dispute", charge=charge_id))
    disputed = inbox_row("", dispute)  # stored without a customer: the payload names none
    other = inbox_row(unique_id("cus"))
    holder, release = customer_lock_held(customer_id)
    done = []
    blocked = apply_in_thread(disputed, done)
    apply_in_thread(other, done).join(timeout=10)
    blocked.join(timeout=0.5)
    assert blocked.is_alive() and done == [other.customer_id]  # the dispute waits
    release.set()
    holder.join(timeout=10)
    blocked.join(timeout=10)
    assert done == [other.customer_id, ""]
    applied = [p["billing_event"] for p in processed]
    assert [e.event_id for e in applied] == [charge["id"], other.event_id, dispute["id"]]
    assert applied[-1].customer_id == customer_id  # resolved through its charge
