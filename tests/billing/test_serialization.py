"""Events of one Stripe customer never run at the same time; other customers' do."""

import threading

import pytest
from django.db import connection, transaction

from billing import services
from billing.db import advisory_xact_lock
from billing.models import StripeEvent
from tests.billing.conftest import customer_event
from tests.servers import require_postgres


def inbox_row(customer_id: str) -> StripeEvent:
    payload = customer_event("customer.updated", customer_id=customer_id)
    return StripeEvent.objects.create(
        event_id=payload["id"],
        type=payload["type"],
        created=payload["created"],
        customer_id=customer_id,
        payload=payload,
    )


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
    locked, release, done = threading.Event(), threading.Event(), []

    def hold_lock():
        # Stands in for another task of cus_busy that is mid-way through its transaction.
        with transaction.atomic():
            advisory_xact_lock("apply", "cus_busy")
            locked.set()
            release.wait(timeout=30)
        connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(timeout=10)
    blocked = apply_in_thread(same, done)
    apply_in_thread(other, done).join(timeout=10)
    assert done == ["cus_free"]  # the other customer went through
    blocked.join(timeout=0.5)
    assert blocked.is_alive() and done == ["cus_free"]  # cus_busy waits for the lock
    release.set()
    holder.join(timeout=10)
    blocked.join(timeout=10)
    assert done == ["cus_free", "cus_busy"]
    assert [p["event_id"] for p in processed] == [other.event_id, same.event_id]
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"applied"}
