"""Refused deliveries cost constant storage: bodyless, throttled per address, one audit row per
address, problem and minute, and purged after the retention (billing/rejections.py)."""

import json
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from djstripe.models import WebhookEventTrigger

from audit.models import AuditEvent
from billing import rejections
from billing.models import RejectionBucket
from tests.billing.conftest import customer_event, deliver, metric, new_secret

LIMIT = 5
MIB = 1024 * 1024


@pytest.fixture
def limit(settings):
    settings.BILLING_WEBHOOK_REJECTION_LIMIT = LIMIT
    settings.BILLING_WEBHOOK_REJECTION_WINDOW_SECONDS = 60
    return LIMIT


def flush() -> int:
    # As the beat task does once the minutes have closed.
    return rejections.rejection_counts_flush(now=timezone.now() + timedelta(minutes=3))


def stored_bytes() -> int:
    rows = WebhookEventTrigger.objects.values_list("headers", "body")
    return sum(len(json.dumps(headers)) + len(body) for headers, body in rows)


def rejected_audit_rows():
    return AuditEvent.objects.filter(action="billing.webhook.rejected")


def test_a_flood_of_refusals_adds_constant_rows_and_bytes(client, endpoint, limit):
    unknown = metric("tollgate_billing_webhook_rejected_total", problem="webhook-endpoint-unknown")
    invalid = metric("billing_webhook_invalid_sig_total")
    throttled = metric("tollgate_billing_webhook_throttled_total")
    big = b'{"object": "event", "pad": "' + b"x" * (MIB - 40) + b'"}'
    assert len(big) <= MIB
    statuses = []
    for _ in range(20):
        response = client.post(
            f"/stripe/webhook/{uuid.uuid4()}/",
            data=big,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE="t=1,v1=00",
        )
        assert response["Content-Type"] == "application/problem+json"
        statuses.append(response.status_code)
    for _ in range(300):
        response = deliver(client, endpoint, customer_event(), secret=new_secret())
        assert response["Content-Type"] == "application/problem+json"
        statuses.append(response.status_code)

    assert statuses[:LIMIT] == [404] * LIMIT
    assert set(statuses) <= {404, 400, 429} and statuses.count(429) >= 300
    # Every refusal is counted, throttled or not.
    assert metric(
        "tollgate_billing_webhook_rejected_total", problem="webhook-endpoint-unknown"
    ) == (unknown + 20)
    assert metric("billing_webhook_invalid_sig_total") == invalid + 300
    assert metric("tollgate_billing_webhook_throttled_total") == throttled + statuses.count(429)
    # Delivery rows: at most the limit per window (a test may straddle two windows), no bodies.
    assert WebhookEventTrigger.objects.count() <= 2 * LIMIT
    assert stored_bytes() < 2 * LIMIT * 1024
    assert not WebhookEventTrigger.objects.filter(body__contains="xxxx").exists()
    # Audit: one bucket per address, problem and minute, each reported once with its count.
    buckets = RejectionBucket.objects.count()
    assert 2 <= buckets <= 4
    assert flush() == buckets
    assert not RejectionBucket.objects.exists()
    rows = rejected_audit_rows()
    assert rows.count() == buckets
    counts = {}
    for row in rows:
        counts[row.meta["problem"]] = counts.get(row.meta["problem"], 0) + row.meta["count"]
        assert (row.ip, row.meta["count_incomplete"]) == ("127.0.0.1", False)
    assert counts == {"webhook-endpoint-unknown": 20, "webhook-signature-invalid": 300}
    # A second flush reports nothing again.
    assert flush() == 0
    assert rejected_audit_rows().count() == buckets


def test_over_the_limit_is_429_problem_with_retry_after(client, endpoint, limit):
    for _ in range(LIMIT):
        assert deliver(client, endpoint, customer_event(), secret=new_secret()).status_code == 400
    response = deliver(client, endpoint, customer_event(), secret=new_secret())
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "https://tollgate.dev/problems/throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    # A delivery that verifies is never throttled.
    assert deliver(client, endpoint, customer_event()).status_code == 200


def test_refused_delivery_keeps_size_and_hash_not_the_body(client, endpoint):
    payload = customer_event()
    response = deliver(client, endpoint, payload, secret=new_secret())
    assert response.status_code == 400
    trigger = WebhookEventTrigger.objects.get()
    assert payload["id"] not in trigger.body
    assert trigger.body.startswith("[not stored: ") and "sha256 " in trigger.body


def test_counts_are_flagged_when_redis_loses_them(client, endpoint):
    deliver(client, endpoint, customer_event(), secret=new_secret())
    deliver(client, endpoint, customer_event(), secret=new_secret())
    cache.clear()  # Redis restarted without persistence, mid-minute
    deliver(client, endpoint, customer_event(), secret=new_secret())
    flush()
    row = rejected_audit_rows().get()
    assert row.meta["count_incomplete"] is True
    assert row.meta["count"] >= 1
    assert row.reason.startswith("at least ")


def test_ipv6_addresses_of_one_64_share_a_bucket():
    assert rejections.client_address("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::"
    assert rejections.client_address("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::"
    assert rejections.client_address("::ffff:10.0.0.1") == "10.0.0.1"
    assert rejections.client_address("not an address") == rejections.UNKNOWN_ADDRESS


def test_retention_purges_refused_deliveries_and_keeps_the_audit_rows(client, endpoint, settings):
    assert deliver(client, endpoint, customer_event()).status_code == 200
    deliver(client, endpoint, customer_event(), secret=new_secret())
    flush()
    retention = timedelta(hours=settings.BILLING_REJECTED_DELIVERY_RETENTION_HOURS)
    WebhookEventTrigger.objects.update(created=timezone.now() - retention - timedelta(hours=1))
    deliver(client, endpoint, customer_event(), secret=new_secret())  # recent: kept
    purged = rejections.rejected_deliveries_purge(older_than=retention, now=timezone.now())
    assert purged == 1
    # The accepted event's delivery stays, as does the recent refusal and the audit row.
    assert WebhookEventTrigger.objects.filter(valid=True).count() == 1
    assert WebhookEventTrigger.objects.filter(valid=False).count() == 1
    assert rejected_audit_rows().count() == 1
