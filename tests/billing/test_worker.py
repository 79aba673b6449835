"""The non-eager path: the webhook commits, publishes to Redis, a real Celery worker applies."""

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from audit.models import AuditEvent
from billing import services, tasks
from billing.models import StripeEvent
from config.celery import app as celery_app
from config.context import Actor, acting_as
from entitlements.models import Entitlement
from tests.billing.conftest import customer_event, deliver
from tests.servers import database_url_of, require_postgres, stop_process
from tests.stripe_fixtures import event, resource, unique_id

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(transactional_db, tmp_path, settings):
    require_postgres(connection, needs_redis=True)
    process = start_worker(tmp_path, pool="threads")
    # This process publishes for real instead of running tasks inline (Celery reads Django's
    # setting: app.conf.task_always_eager = False does not override it in Celery 5.6).
    settings.CELERY_TASK_ALWAYS_EAGER = False
    try:
        yield process
    finally:
        stop_process(process)


def start_worker(metrics_dir: Path, *, pool: str, log=subprocess.PIPE) -> subprocess.Popen:
    """A Celery worker on the test database and Redis; its stderr piped (wait_for shows it) or
    written to `log`, an open file (a pipe nobody reads would fill and block it)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url_of(connection),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "BILLING_STRIPE_MIRROR_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        # The worker's counters, read by worker_counts() (prometheus multiprocess files).
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    celery = Path(sys.executable).with_name("celery")
    process = subprocess.Popen(
        [str(celery), "-A", "config", "worker", "--pool", pool, "--concurrency", "2",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    process.metrics_dir = metrics_dir
    return process


def worker_counts(worker, name: str, **labels) -> float:
    """A counter of the worker process, summed over the label values not given."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(worker.metrics_dir))
    return sum(
        sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def wait_for(condition, worker, *, seconds: float = 60) -> None:
    for _ in range(int(seconds * 10)):
        if condition():
            return
        if worker.poll() is not None:
            pytest.fail("the Celery worker exited: " + worker.stderr.read().decode()[-3000:])
        time.sleep(0.1)
    pytest.fail("the Celery worker did not get there in time")


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
    settings.CELERY_TASK_ALWAYS_EAGER = False
    try:
        redis_server.stop()
        payload = customer_event()
        response = deliver(client, endpoint, payload)
    finally:
        redis_server.start()
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    row = StripeEvent.objects.get(event_id=payload["id"])
    assert row.status == StripeEvent.Status.RECEIVED  # stored; the requeue sweep queues it


def inbox_row(payload: dict, customer_id: str, **fields) -> StripeEvent:
    """An event stored by the webhook whose apply task is still to be queued."""
    return StripeEvent.objects.create(
        event_id=payload["id"], type=payload["type"], created=payload["created"],
        livemode=False, customer_id=customer_id, payload=payload,
        mirror_status=StripeEvent.MirrorStatus.DISABLED, **fields,
    )  # fmt: skip


def test_two_apply_tasks_racing_on_a_worker_grant_and_audit_once(worker, django_user_model):
    user = django_user_model.objects.create_user(username="racer")
    subscription = resource(
        "subscription", id="sub_race", customer="cus_race", status="active",
        metadata={"user_id": str(user.pk)},
    )  # fmt: skip
    item = subscription["items"]["data"][0]
    item["current_period_end"] = int(time.time()) + 30 * 86400
    item["price"].update(lookup_key="premium", metadata={}, product="prod_race")
    payload = event("customer.subscription.created", subscription)
    inbox_row(payload, "cus_race")
    # Two deliveries of the task (a requeue sweep and the original, say), at the same moment,
    # taken by the worker's two threads together.
    for _ in range(2):
        tasks.apply_event.delay(payload["id"], "cus_race")

    def both_ran():
        outcomes = [worker_counts(worker, "tollgate_billing_events_processed_total", outcome=o)
                    for o in ("applied", "skipped")]  # fmt: skip
        return outcomes == [1, 1]

    wait_for(both_ran, worker)
    row = StripeEvent.objects.get(event_id=payload["id"])
    assert (row.status, row.attempts) == ("applied", 1)
    grants = Entitlement.objects.filter(user=user, source=Entitlement.Source.STRIPE)
    features = sorted(grants.values_list("feature__lookup_key", flat=True))
    assert features == ["advanced_analytics", "signals_basic", "signals_premium"]
    audit = Counter(
        AuditEvent.objects.filter(stripe_event_id=payload["id"]).values_list("action", "target_id")
    )
    assert set(audit.values()) == {1}, audit  # no row twice
    created = [target for action, target in audit if action == "entitlements.grant.created"]
    assert sorted(created) == sorted(str(pk) for pk in grants.values_list("pk", flat=True))


def test_a_task_on_the_worker_is_attributed_to_whoever_queued_it(worker, django_user_model):
    staff = django_user_model.objects.create_user("sam", "sam@example.com", is_staff=True)
    staff.groups.add(Group.objects.get_or_create(name="Billing admin")[0])
    invoice = resource(
        "invoice", id=unique_id("in"), customer=unique_id("cus"), amount_paid=1900,
        amount_due=1900, currency="usd", status="paid",
    )  # fmt: skip
    payload = event("invoice.paid", invoice)
    inbox_row(payload, invoice["customer"], status=StripeEvent.Status.DEAD, attempts=3)
    # Staff requeue the dead letter (what the admin action does): the apply task is published
    # on commit, and the worker's audit row must name them, not the system.
    with acting_as(Actor(kind="user", user_id=staff.pk), request_id="req-worker-1"):
        services.dead_letter_reprocess(
            event_id=payload["id"], actor=Actor(kind="user", user_id=staff.pk), reason="ticket 9"
        )

    wait_for(lambda: StripeEvent.objects.get(event_id=payload["id"]).status == "applied", worker)
    row = AuditEvent.objects.get(action="billing.invoice.paid", stripe_event_id=payload["id"])
    assert (row.actor_type, row.actor_id, row.actor_name) == ("user", str(staff.pk), "sam")
    assert (row.actor_role, row.request_id) == ("ADMIN", "req-worker-1")
