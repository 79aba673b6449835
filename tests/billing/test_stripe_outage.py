"""A Stripe API outage never fails or loses a webhook; dj-stripe's mirror catches up later.

Only Stripe's HTTP API is faked (billing/simulator/fake_api.py, a real local server, through
the `fake_stripe` fixture of tests/conftest.py); everything of ours runs for real.
"""

from datetime import timedelta

import pytest
import stripe
from django.core.management import call_command
from django.utils import timezone
from djstripe.models import Customer, Event, WebhookEventTrigger

from billing import services, tasks
from billing.models import StripeEvent
from tests.billing.conftest import customer_event, deliver, metric


@pytest.mark.parametrize("failure", ["500", "429", "refused"])
def test_events_are_applied_during_an_outage_and_mirrored_after(
    client, endpoint, fake_stripe, processed, failure, django_capture_on_commit_callbacks
):
    if failure == "refused":
        fake_stripe.refuse()
    else:
        fake_stripe.mode = failure
    payload = customer_event("customer.updated", customer_id="cus_outage")
    fake_stripe.record_event(payload)
    failed = metric("tollgate_billing_mirror_syncs_total", outcome="failed")
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, endpoint, payload)

    assert response.status_code == 200
    assert [p["billing_event"].event_id for p in processed] == [
        payload["id"]
    ]  # entitlements and audit heard of it
    row = StripeEvent.objects.get(event_id=payload["id"])
    assert row.status == "applied"
    assert (row.mirror_status, row.mirror_attempts) == ("failed", 3)
    assert row.mirror_error.startswith(("APIError", "RateLimitError", "APIConnectionError"))
    assert metric("tollgate_billing_mirror_syncs_total", outcome="failed") == failed + 1
    assert not Customer.objects.filter(id="cus_outage").exists()
    assert "FakeKey" not in row.mirror_error
    if failure != "refused":
        assert len(fake_stripe.requests) == 3  # the SDK did call, once per attempt

    # Stripe answers again: the backlog command fills dj-stripe's mirror.
    if failure == "refused":
        fake_stripe.serve()
        stripe.api_base = fake_stripe.url
    fake_stripe.mode = "ok"
    with django_capture_on_commit_callbacks(execute=True):
        call_command("billing_mirror_sync")
    row.refresh_from_db()
    assert row.mirror_status == "synced"
    assert Event.objects.filter(id=payload["id"]).exists()
    assert Customer.objects.filter(id="cus_outage").exists()
    trigger = WebhookEventTrigger.objects.get(pk=row.trigger_id)
    assert trigger.processed and trigger.event_id == payload["id"]
    assert ("GET", "/v1/customers/cus_outage") in fake_stripe.requests
    assert [p["billing_event"].event_id for p in processed] == [
        payload["id"]
    ]  # the mirror never re-applies the event


def test_mirror_sync_runs_with_the_event_when_stripe_is_up(
    client, endpoint, fake_stripe, django_capture_on_commit_callbacks
):
    payload = customer_event("customer.updated", customer_id="cus_up")
    payload["data"]["object"]["email"] = "up@example.com"
    fake_stripe.record_event(payload)
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, endpoint, payload)
    assert StripeEvent.objects.get(event_id=payload["id"]).mirror_status == "synced"
    assert Customer.objects.get(id="cus_up").email == "up@example.com"


def test_the_stale_sweep_queues_a_lost_mirror_sync_again(
    client, endpoint, fake_stripe, processed, settings
):
    # The test transaction never commits: the tasks queued on commit never ran, as when the
    # broker was down. The event is applied by hand; only its mirror sync is left pending.
    settings.BILLING_REQUEUE_STALE_AFTER_SECONDS = 900
    lost, recent = (customer_event(customer_id=c) for c in ("cus_lost", "cus_recent"))
    for payload in (lost, recent):
        fake_stripe.record_event(payload)  # Stripe knows the customers its events carry
        deliver(client, endpoint, payload)
        services.event_apply(event_id=payload["id"], customer_id=payload["data"]["object"]["id"])
    StripeEvent.objects.filter(event_id=lost["id"]).update(
        updated_at=timezone.now() - timedelta(seconds=901)
    )
    assert StripeEvent.objects.get(event_id=lost["id"]).mirror_status == "pending"
    assert tasks.requeue_stale_events.delay().get() == 0  # nothing to apply again
    row = StripeEvent.objects.get(event_id=lost["id"])
    assert (row.status, row.mirror_status, row.mirror_attempts) == ("applied", "synced", 1)
    assert Customer.objects.filter(id="cus_lost").exists()
    assert StripeEvent.objects.get(event_id=recent["id"]).mirror_status == "pending"
    assert not Customer.objects.filter(id="cus_recent").exists()
    assert len(processed) == 2  # applied once each, never again by the sweep
