"""The outbox relay (billing/relay.py, `manage.py billing_relay`): the webhook request only
stores; relays claim stored events with SKIP LOCKED, are woken by NOTIFY, and a relay killed
mid-batch loses nothing and applies nothing twice. Real PostgreSQL, Redis and Celery worker."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis
from celery import signals as celery_signals
from django.conf import settings
from django.db import connection, connections
from kombu.exceptions import OperationalError as BrokerError

from billing import services
from billing.models import StripeEvent
from billing.relay import OutboxListener, outbox_relay
from tests.billing.conftest import customer_event, deliver
from tests.billing.test_worker import (  # noqa: F401 - worker is a fixture
    inbox_row,
    wait_for,
    worker,
    worker_counts,
)
from tests.servers import database_url_of, require_postgres, stop_process

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def published():
    """Every task this process publishes to the broker, as (task name, event id): a batch
    task (apply_events) appears once for each of its events."""
    seen = []

    def record(sender=None, body=None, **_kwargs):
        first = body[0][0]
        if sender == "billing.tasks.apply_events":
            seen.extend((sender, event_id) for event_id, _customer in first)
        else:
            seen.append((sender, first))

    celery_signals.before_task_publish.connect(record, weak=False)
    try:
        yield seen
    finally:
        celery_signals.before_task_publish.disconnect(record)


@pytest.fixture
def broker(transactional_db, settings):
    """Tasks go to the real Redis broker (no eager Celery, no inline relay: production's
    configuration), whose queue starts empty."""
    require_postgres(connection, needs_redis=True)
    settings.BILLING_RELAY_INLINE = False
    queue = redis.Redis.from_url(settings.REDIS_URL)
    queue.delete("celery")
    settings.CELERY_TASK_ALWAYS_EAGER = False  # Django's setting: Celery 5.6 reads it first
    try:
        yield queue
    finally:
        queue.delete("celery")


def stored_events(count: int, *, prefix: str) -> list[str]:
    """`count` events as the webhook leaves them: stored, not queued."""
    ids = []
    for n in range(count):
        payload = customer_event(customer_id=f"cus_{prefix}_{n}")
        inbox_row(payload, f"cus_{prefix}_{n}")
        ids.append(payload["id"])
    return ids


def test_the_request_stores_and_publishes_nothing(client, endpoint, broker, published):
    payload = customer_event(customer_id="cus_outbox")
    response = deliver(client, endpoint, payload)
    assert response.json()["status"] == "accepted"
    assert published == []  # no broker in the request
    assert broker.llen("celery") == 0
    row = StripeEvent.objects.get(event_id=payload["id"])
    assert (row.status, row.queued_at) == ("received", None)

    assert outbox_relay(batch_size=10) == 1
    assert published == [("billing.tasks.apply_events", payload["id"])]
    assert StripeEvent.objects.get(event_id=payload["id"]).queued_at is not None
    assert outbox_relay(batch_size=10) == 0  # queued once


@pytest.mark.parametrize(("apply_batch_size", "tasks"), [(1, 40), (50, 2)])
def test_two_relays_at_once_never_publish_one_event_twice(
    broker, published, settings, apply_batch_size, tasks
):
    # Batched (one task per relay's claim of 20 customers) and one task per event alike.
    settings.BILLING_APPLY_BATCH_SIZE = apply_batch_size
    ids = stored_events(40, prefix="skip")
    second_relay_done = threading.Event()
    second_relay_started = threading.Event()
    second_relay_claimed = []
    errors = []

    def second_relay():
        try:
            second_relay_claimed.append(outbox_relay(batch_size=20))
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()
            second_relay_done.set()

    def hold_the_first_relay(sender=None, body=None, **_kwargs):
        # The first relay holds its 20 rows locked, mid-batch, until the second has claimed:
        # without SKIP LOCKED the second would wait for them (and the join below time out).
        if not second_relay_started.is_set():
            second_relay_started.set()
            threading.Thread(target=second_relay).start()
            assert second_relay_done.wait(timeout=20), "the second relay waited for the first"

    celery_signals.before_task_publish.connect(hold_the_first_relay, weak=False)
    try:
        first = outbox_relay(batch_size=20)
    finally:
        celery_signals.before_task_publish.disconnect(hold_the_first_relay)

    assert errors == []
    assert (first, second_relay_claimed) == (20, [20])
    assert sorted(event_id for _, event_id in published) == sorted(ids)  # every event, once
    assert broker.llen("celery") == tasks
    assert not StripeEvent.objects.filter(event_id__in=ids, queued_at__isnull=True).exists()


def test_a_stored_event_wakes_the_relay(client, endpoint, broker):
    listener = OutboxListener()
    try:
        assert listener.wait(0.2) is False  # nothing stored: the relay sleeps
        payload = customer_event(customer_id="cus_wake")
        assert deliver(client, endpoint, payload).json()["status"] == "accepted"
        assert listener.wait(30) is True  # the insert's commit woke it
        assert listener.wait(0.2) is False  # one wake-up per commit, consumed
        # A duplicate stores no inbox row and wakes nobody.
        assert deliver(client, endpoint, payload).json()["status"] == "duplicate"
        assert listener.wait(0.2) is False
    finally:
        listener.close()


def relay_process(*extra: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url_of(connection),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "billing_relay", "--poll", "0.2", *extra],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_a_relay_killed_mid_batch_loses_nothing_and_applies_nothing_twice(broker, request):
    ids = stored_events(30, prefix="killed")
    # Hold the relay between publishing its batch and marking it queued: a table lock that
    # its claim (FOR UPDATE takes ROW SHARE) passes and its UPDATE (ROW EXCLUSIVE) waits for.
    blocker = connections.create_connection("default")
    blocker.set_autocommit(False)
    with blocker.cursor() as cursor:
        cursor.execute("LOCK TABLE billing_stripeevent IN SHARE MODE")
    relay = relay_process()
    try:
        # The whole claim is published: 30 customers' events, one batch task.
        wait_for(lambda: broker.llen("celery") == 1, relay)
        relay.send_signal(signal.SIGKILL)
        relay.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()
        stop_process(relay)
    # Its claim died with it: every event is still waiting to be queued.
    assert StripeEvent.objects.filter(event_id__in=ids, queued_at__isnull=True).count() == 30

    # The next relay publishes them all again (each event now in two tasks in the queue)...
    again = relay_process("--once")
    assert again.wait(timeout=60) == 0, again.stderr.read().decode()[-3000:]
    assert broker.llen("celery") == 2
    # ...and the worker applies each once.
    worker_process = request.getfixturevalue("worker")
    wait_for(
        lambda: StripeEvent.objects.filter(event_id__in=ids, status="applied").count() == 30,
        worker_process,
    )
    wait_for(lambda: broker.llen("celery") == 0, worker_process)
    # Each event applied by one task, skipped (already applied) by the other.
    wait_for(
        lambda: worker_counts(worker_process, "tollgate_billing_events_processed_total") == 60,
        worker_process,
    )
    outcomes = {
        outcome: worker_counts(
            worker_process, "tollgate_billing_events_processed_total", outcome=outcome
        )
        for outcome in ("applied", "skipped")
    }
    assert outcomes == {"applied": 30, "skipped": 30}
    attempts = StripeEvent.objects.filter(event_id__in=ids).values_list("attempts", flat=True)
    assert set(attempts) == {1}


def test_the_sweep_queues_what_a_killed_relay_left(broker, published):
    ids = stored_events(5, prefix="swept")
    # A relay died with its claim (rolled back): the rows are stored and unqueued, and no
    # relay runs. Beat's sweep queues them once they are stale.
    assert services.event_requeue_stale(older_than_seconds=-60) == 5
    assert sorted(event_id for _, event_id in published) == sorted(ids)
    assert not StripeEvent.objects.filter(event_id__in=ids, queued_at__isnull=True).exists()
    assert outbox_relay(batch_size=10) == 0  # a relay started later has nothing to publish


def test_redis_down_costs_the_request_nothing_and_the_event_is_applied_once_it_is_back(
    client, endpoint, broker, redis_server, published, request, caplog
):
    redis_server.stop()
    try:
        payload = customer_event(customer_id="cus_redis_down")
        response = deliver(client, endpoint, payload)
        assert response.status_code == 200
        assert response.json()["status"] == "accepted"
        assert published == []  # nothing tried the broker
        # ...nor the cache: django-redis logs every call it could not make.
        assert [r for r in caplog.records if r.name.startswith("django_redis")] == []
        with pytest.raises(BrokerError):
            outbox_relay(batch_size=10)  # the relay cannot publish: its claim rolls back
        assert StripeEvent.objects.get(event_id=payload["id"]).queued_at is None
    finally:
        redis_server.start()
    relay = relay_process()
    try:
        worker_process = request.getfixturevalue("worker")
        wait_for(
            lambda: StripeEvent.objects.get(event_id=payload["id"]).status == "applied",
            worker_process,
        )
    finally:
        stop_process(relay)
    wait_for(
        lambda: worker_counts(worker_process, "tollgate_billing_events_processed_total") == 1,
        worker_process,
    )
    assert StripeEvent.objects.get(event_id=payload["id"]).attempts == 1
