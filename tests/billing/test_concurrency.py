"""Exactly once under concurrency: 50 simultaneous deliveries of one event to a real
multi-worker gunicorn server on the test PostgreSQL database."""

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection
from djstripe.models import WebhookEventTrigger

from billing import services
from billing.models import StripeEvent
from tests.billing.conftest import customer_event, new_secret
from tests.servers import database_url_of, free_port, require_postgres, stop_process
from tests.stripe_fixtures import signed

ROOT = Path(__file__).resolve().parents[2]
DELIVERIES = 50


@pytest.fixture
def server(transactional_db, tmp_path):
    """gunicorn with 4 worker processes (4 threads each) on the pytest-django test database."""
    require_postgres(connection)
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url_of(connection),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "BILLING_STRIPE_MIRROR_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        # Metrics from all workers are summed from files here, as in production.
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "4", "--threads", "4", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start: " + process.stderr.read1(4000).decode())
        yield base
    finally:
        stop_process(process)


def test_fifty_simultaneous_deliveries_apply_once(server):
    secret = new_secret()
    endpoint = services.webhook_endpoint_configure(secrets=[secret], tolerance=300, url="")
    payload = customer_event("customer.updated", customer_id="cus_race")
    body, header = signed(payload, secret)
    url = f"{server}/stripe/webhook/{endpoint.djstripe_uuid}/"
    start = threading.Barrier(DELIVERIES)

    def deliver(_):
        start.wait()
        return requests.post(
            url,
            data=body,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=DELIVERIES) as pool:
        responses = list(pool.map(deliver, range(DELIVERIES)))

    assert [r.status_code for r in responses] == [200] * DELIVERIES
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["accepted"] + ["duplicate"] * (DELIVERIES - 1)
    row = StripeEvent.objects.get(event_id=payload["id"])
    # attempts counts the runs of the stripe_event_processed receivers: exactly one.
    assert (row.status, row.attempts) == ("applied", 1)

    # The counters add up across the four worker processes (prometheus multiprocess mode).
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in requests.get(f"{server}/metrics", timeout=10).text.splitlines()
        if line and not line.startswith("#")
    }
    by_cache = samples.get('tollgate_billing_webhook_duplicates_total{answered_by="cache"}', 0)
    by_database = samples.get(
        'tollgate_billing_webhook_duplicates_total{answered_by="database"}', 0
    )
    assert by_cache + by_database == DELIVERIES - 1
    # Every delivery that reached the database is recorded; Redis answers write nothing.
    assert WebhookEventTrigger.objects.filter(valid=True).count() == 1 + by_database
    assert samples['billing_webhook_replay_block_total{reason="duplicate_event"}'] == 49
    assert samples['idempotent_hits_total{operation="webhook"}'] == 49
    assert samples['tollgate_billing_webhook_events_received_total{type="customer.updated"}'] == 1
    assert (
        samples[
            'tollgate_billing_events_processed_total{outcome="applied",type="customer.updated"}'
        ]
        == 1
    )
