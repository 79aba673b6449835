"""Processing in Celery (eager here): applied exactly once, retried, dead-lettered, requeued."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from djstripe.models import WebhookEventTrigger

from billing import metrics, services, signals, stripe_events, tasks
from billing.models import StripeEvent
from config.context import Actor
from tests.billing.conftest import customer_event, deliver, metric
from tests.staff_login import staff_login


@pytest.fixture
def failing_receiver():
    """A receiver that writes, then fails: its write must roll back with the attempt."""
    state = {"fail": True}

    def receiver(sender, billing_event, **kwargs):
        Group.objects.create(name=f"written-by-{billing_event.event_id}")
        if state["fail"]:
            raise RuntimeError("receiver exploded")

    signals.stripe_event_processed.connect(receiver, dispatch_uid="test-failing")
    yield state
    signals.stripe_event_processed.disconnect(dispatch_uid="test-failing")


def test_event_is_applied_once_with_the_contract_kwargs(
    client, endpoint, processed, django_capture_on_commit_callbacks
):
    payload = customer_event("customer.updated", customer_id="cus_once")
    applied = metric(
        "tollgate_billing_events_processed_total", type="customer.updated", outcome="applied"
    )
    timed = metric("tollgate_billing_event_processing_seconds_count", type="customer.updated")
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, endpoint, payload).json()["status"] == "accepted"
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, endpoint, payload).json()["status"] == "duplicate"
    assert processed == [
        {"signal": signals.stripe_event_processed, "billing_event": stripe_events.parse(payload)}
    ]
    row = StripeEvent.objects.get(event_id=payload["id"])
    assert (row.status, row.attempts, row.applied_at is not None) == ("applied", 1, True)
    assert (
        metric(
            "tollgate_billing_events_processed_total", type="customer.updated", outcome="applied"
        )
        == applied + 1
    )
    assert (
        metric("tollgate_billing_event_processing_seconds_count", type="customer.updated")
        == timed + 1
    )
    # A redelivered task (acks_late after a worker crash) is a no-op.
    assert services.event_apply(event_id=payload["id"], customer_id="cus_once") is False
    assert len(processed) == 1


def test_failures_retry_then_dead_letter(
    client, endpoint, settings, failing_receiver, django_capture_on_commit_callbacks
):
    settings.BILLING_EVENT_MAX_RETRIES = 2
    payload = customer_event()
    retries = metric(
        "tollgate_billing_events_processed_total", type="customer.updated", outcome="retry"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, endpoint, payload)
    assert response.status_code == 200  # a failing receiver never fails the delivery
    row = StripeEvent.objects.get(event_id=payload["id"])
    assert (row.status, row.attempts) == ("dead", 3)
    assert row.last_error == "RuntimeError: receiver exploded"
    assert not Group.objects.filter(name=f"written-by-{payload['id']}").exists()
    assert metric(
        "tollgate_billing_events_processed_total", type="customer.updated", outcome="retry"
    ) == (retries + 2)
    assert metric("tollgate_billing_dead_letters") == 1
    metrics.dead_letters.set(0)  # as in a freshly started process
    tasks.refresh_dead_letter_gauge.delay()
    assert metric("tollgate_billing_dead_letters") == 1


def _dead_letter(client, endpoint, settings, capture) -> dict:
    settings.BILLING_EVENT_MAX_RETRIES = 0
    payload = customer_event()
    with capture(execute=True):
        deliver(client, endpoint, payload)
    assert StripeEvent.objects.get(event_id=payload["id"]).status == "dead"
    return payload


def test_staff_with_permission_reprocesses_from_admin(
    client, endpoint, settings, failing_receiver, reprocessed, django_user_model,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    payload = _dead_letter(client, endpoint, settings, django_capture_on_commit_callbacks)
    row = StripeEvent.objects.get(event_id=payload["id"])
    staff = django_user_model.objects.create_user("billing-staff", password="pw", is_staff=True)
    staff.groups.add(Group.objects.get(name="Billing admin"))
    staff_login(client, staff)
    failing_receiver["fail"] = False
    url = "/admin/billing/stripeevent/"
    form = {"action": "reprocess_dead_letters", "_selected_action": [row.pk]}
    confirm = client.post(url, form)
    assert confirm.status_code == 200 and b"reason" in confirm.content
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {**form, "reason": "receiver fixed in #42"})
    assert done.status_code == 302
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("applied", 1)
    assert reprocessed == [
        {
            "signal": signals.dead_letter_reprocessed,
            "event_id": payload["id"],
            "event_type": "customer.updated",
            "actor": Actor(kind="user", user_id=staff.pk),
            "reason": "receiver fixed in #42",
        }
    ]
    assert metric("tollgate_billing_dead_letters") == 0


def test_staff_without_permission_cannot_reprocess(
    client, endpoint, settings, failing_receiver, reprocessed, django_user_model,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    payload = _dead_letter(client, endpoint, settings, django_capture_on_commit_callbacks)
    row = StripeEvent.objects.get(event_id=payload["id"])
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*Group.objects.get(name="Billing admin").permissions.filter(
        codename="view_stripeevent"
    ))  # fmt: skip
    staff_login(client, viewer)
    url = "/admin/billing/stripeevent/"
    assert client.get(url).status_code == 200
    assert client.get(f"{url}{row.pk}/change/").status_code == 200  # read-only view
    form = {"action": "reprocess_dead_letters", "_selected_action": [row.pk], "reason": "x"}
    client.post(url, form)
    row.refresh_from_db()
    assert row.status == "dead" and reprocessed == []


def test_reprocess_command_needs_permission(
    endpoint, client, settings, failing_receiver, reprocessed, django_user_model,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from django.core.management.base import CommandError

    payload = _dead_letter(client, endpoint, settings, django_capture_on_commit_callbacks)
    django_user_model.objects.create_user("nobody")
    with pytest.raises(CommandError):
        call_command("reprocess_dead_letters", user="nobody", reason="try")
    admin = django_user_model.objects.create_superuser("root", password="pw")
    failing_receiver["fail"] = False
    with django_capture_on_commit_callbacks(execute=True):
        call_command("reprocess_dead_letters", user="root", reason="after fix")
    assert StripeEvent.objects.get(event_id=payload["id"]).status == "applied"
    assert [(r["actor"], r["reason"]) for r in reprocessed] == [
        (Actor(kind="user", user_id=admin.pk), "after fix")
    ]
    with pytest.raises(CommandError):  # no longer a dead letter
        call_command("reprocess_dead_letters", user="root", reason="again", event=[payload["id"]])


def test_redis_fast_path_answers_known_duplicates_without_a_database_write(
    client, endpoint, django_capture_on_commit_callbacks, settings
):
    settings.BILLING_WEBHOOK_DEDUP_CACHE = True  # opt-in (docs/webhooks.md)
    payload = customer_event()
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, endpoint, payload)
    by_cache = metric("tollgate_billing_webhook_duplicates_total", answered_by="cache")
    with CaptureQueriesContext(connection) as queries:
        assert deliver(client, endpoint, payload).json()["status"] == "duplicate"
    # Not even a read: the endpoint's secrets come from the process cache, the id from Redis.
    assert [q["sql"] for q in queries] == []
    assert metric("tollgate_billing_webhook_duplicates_total", answered_by="cache") == by_cache + 1
    assert WebhookEventTrigger.objects.count() == 1


def test_duplicates_blocked_with_redis_flushed(
    client, endpoint, django_capture_on_commit_callbacks
):
    payload = customer_event()
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, endpoint, payload)
    cache.clear()
    before = metric("billing_webhook_replay_block_total", reason="duplicate_event")
    assert deliver(client, endpoint, payload).json()["status"] == "duplicate"
    assert metric("billing_webhook_replay_block_total", reason="duplicate_event") == before + 1
    assert StripeEvent.objects.filter(event_id=payload["id"]).count() == 1


def test_duplicates_blocked_with_redis_stopped(
    client, endpoint, redis_server, processed, django_capture_on_commit_callbacks
):
    redis_server.stop()
    payload = customer_event()
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, endpoint, payload).json()["status"] == "accepted"
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, endpoint, payload).json()["status"] == "duplicate"
    assert len(processed) == 1
    assert StripeEvent.objects.get(event_id=payload["id"]).status == "applied"


def test_events_whose_task_was_lost_are_queued_again(client, endpoint, processed, settings):
    # The test transaction never commits, so the on_commit queueing never ran: exactly the
    # state a broker outage at commit time leaves behind.
    settings.BILLING_REQUEUE_STALE_AFTER_SECONDS = 900
    lost, recent = customer_event(), customer_event()
    deliver(client, endpoint, lost)
    deliver(client, endpoint, recent)
    StripeEvent.objects.filter(event_id=lost["id"]).update(
        updated_at=timezone.now() - timedelta(seconds=901)
    )
    assert tasks.requeue_stale_events.delay().get() == 1
    assert [p["billing_event"].event_id for p in processed] == [lost["id"]]
    assert StripeEvent.objects.get(event_id=lost["id"]).status == "applied"
    assert StripeEvent.objects.get(event_id=recent["id"]).status == "received"
    assert tasks.requeue_stale_events.delay().get() == 0


def test_retries_back_off_exponentially_with_full_jitter(
    client, endpoint, settings, failing_receiver, django_capture_on_commit_callbacks
):
    from celery import signals as celery_signals

    settings.BILLING_EVENT_MAX_RETRIES = 6
    settings.BILLING_RETRY_BACKOFF_SECONDS = 2
    settings.BILLING_RETRY_BACKOFF_MAX_SECONDS = 20
    delays = []

    def on_retry(sender=None, reason=None, **kwargs):
        delays.append(reason.when)

    celery_signals.task_retry.connect(on_retry, weak=False, dispatch_uid="test-backoff")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            deliver(client, endpoint, customer_event())
    finally:
        celery_signals.task_retry.disconnect(dispatch_uid="test-backoff")
    # One delay per retry, each at most 2 s doubled per retry and never above the cap.
    assert len(delays) == 6
    caps = [min(20, 2 * 2**retry) for retry in range(6)]
    assert all(0 <= delay <= cap for delay, cap in zip(delays, caps, strict=True)), delays
    # Full jitter: anywhere from 0 to the cap, not the cap itself every time.
    samples = [tasks._countdown(5) for _ in range(400)]
    assert set(samples) <= set(range(21))
    assert len(set(samples)) > 10 and min(samples) < 5 and max(samples) > 15
    assert max(tasks._countdown(0) for _ in range(100)) <= 2
