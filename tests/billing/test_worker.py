"""The non-eager path: the webhook commits, publishes to Redis, a real Celery worker applies."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from billing.models import StripeEvent
from config.celery import app as celery_app
from tests.billing.conftest import customer_event, deliver
from tests.services import database_url_of, require_postgres, stop_process

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(transactional_db):
    require_postgres(connection, needs_redis=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url_of(connection),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "BILLING_STRIPE_MIRROR_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    celery = Path(sys.executable).with_name("celery")
    process = subprocess.Popen(
        [str(celery), "-A", "config", "worker", "--pool", "threads", "--concurrency", "2",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    # This process publishes for real instead of running tasks inline.
    eager, celery_app.conf.task_always_eager = celery_app.conf.task_always_eager, False
    try:
        yield process
    finally:
        celery_app.conf.task_always_eager = eager
        stop_process(process)


def test_worker_applies_the_event_after_the_request_returned(client, endpoint, worker):
    payload = customer_event()
    response = deliver(client, endpoint, payload)
    assert response.json()["status"] == "accepted"
    row = StripeEvent.objects.get(event_id=payload["id"])
    for _ in range(300):
        row.refresh_from_db()
        if row.status != StripeEvent.Status.RECEIVED:
            break
        if worker.poll() is not None:
            pytest.fail("the Celery worker exited: " + worker.stderr.read().decode()[-3000:])
        time.sleep(0.1)
    assert (row.status, row.attempts) == ("applied", 1)


def test_broker_down_the_event_is_stored_acknowledged_and_queued_later(
    client, endpoint, redis_server, transactional_db, settings
):
    require_postgres(connection, needs_redis=True)
    # A publish gives up after one short retry: the acknowledgement is not held by Celery's
    # default retries while the broker is down.
    assert celery_app.conf.task_publish_retry_policy["max_retries"] <= 1
    eager, celery_app.conf.task_always_eager = celery_app.conf.task_always_eager, False
    try:
        redis_server.stop()
        payload = customer_event()
        response = deliver(client, endpoint, payload)
    finally:
        celery_app.conf.task_always_eager = eager
        redis_server.start()
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    row = StripeEvent.objects.get(event_id=payload["id"])
    assert row.status == StripeEvent.Status.RECEIVED  # stored; the requeue sweep queues it
