"""Redis (the Celery broker) restarts while a task runs: the worker keeps consuming afterwards
and the relay keeps publishing. Real PostgreSQL, Redis, a prefork Celery worker as deployed.

Celery 5.7.0's consumer died here ("Unrecoverable error: AttributeError("'NoneType' object has
no attribute 'hostname'")", bench drill_redis of 2026-12-01): after a connection loss it closed
the broken connection a second time, after collect() had detached its transport, and the
channel's restore of the unacknowledged task then had no broker address to reconnect to."""

import threading
import time

import pytest
from django.db import connection, transaction
from kombu.exceptions import OperationalError as BrokerError

from billing.models import StripeEvent
from billing.relay import outbox_relay
from billing.services import customer_lock
from tests.billing.conftest import customer_event
from tests.billing.test_worker import inbox_row, start_worker
from tests.servers import require_postgres, stop_process


@pytest.fixture
def prefork_worker(transactional_db, settings, tmp_path):
    """The worker as docs/deploy.md runs it (prefork pool), logging to a file; tasks published
    here go to the broker (no eager Celery, no inline relay)."""
    require_postgres(connection, needs_redis=True)
    settings.BILLING_RELAY_INLINE = False
    log_path = tmp_path / "worker.log"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    with open(log_path, "wb") as log:
        process = start_worker(metrics_dir, pool="prefork", log=log)
    process.log_path = log_path
    settings.CELERY_TASK_ALWAYS_EAGER = False
    try:
        yield process
    finally:
        stop_process(process)


def until(condition, worker, *, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.poll() is not None:
            pytest.fail("the Celery worker exited: " + worker.log_path.read_text()[-4000:])
        time.sleep(0.1)
    pytest.fail("not there in time; worker log: " + worker.log_path.read_text()[-4000:])


def applied(event_id: str) -> bool:
    return StripeEvent.objects.get(event_id=event_id).status == StripeEvent.Status.APPLIED


def store_and_relay(customer_id: str) -> str:
    """An event stored as the webhook stores it, then published by the relay step; retried as
    the relay process retries while the broker comes back (its claim rolls back meanwhile)."""
    payload = customer_event(customer_id=customer_id)
    inbox_row(payload, customer_id)
    for _ in range(50):
        try:
            if outbox_relay(batch_size=10):
                return payload["id"]
        except BrokerError:
            time.sleep(0.2)
    pytest.fail("the relay could not publish to the restarted broker")


def waiting_for_a_customer_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0] > 0


def test_a_worker_keeps_consuming_after_redis_restarts_under_a_running_task(
    prefork_worker, redis_server
):
    warmup = store_and_relay("cus_warmup")
    until(lambda: applied(warmup), prefork_worker)  # the worker is consuming

    # Hold customer cus_held's lock from another connection: its event's task runs on the
    # worker, delivered and not yet acknowledged (acks_late), while the worker's other process
    # is free and its consumer waits on the broker for the next task.
    holding, release = threading.Event(), threading.Event()

    def hold_customer_lock():
        try:
            with transaction.atomic():
                customer_lock(customer_key="cus_held")
                holding.set()
                release.wait(120)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_customer_lock)
    holder.start()
    try:
        assert holding.wait(30)
        held = store_and_relay("cus_held")
        until(waiting_for_a_customer_lock, prefork_worker)

        redis_server.stop()  # `shutdown nosave`: the queue and the unacknowledged task are gone
        time.sleep(3)  # the consumer sees the connection drop and starts reconnecting
        redis_server.start()
    finally:
        release.set()
        holder.join()

    until(lambda: applied(held), prefork_worker)  # the running task finished its work
    # A task published after the restart is consumed: the consumer reconnected.
    after = store_and_relay("cus_after_restart")
    until(lambda: applied(after), prefork_worker)
    assert prefork_worker.poll() is None
    assert "Unrecoverable error" not in prefork_worker.log_path.read_text()
