"""The webhook endpoint: every rejection is problem+json, counted, recorded and signalled."""

import hashlib
import hmac
import json
import time
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djstripe.models import WebhookEventTrigger

from billing.models import StripeEvent, WebhookSecret
from tests.billing.conftest import customer_event, deliver, metric, new_secret
from tests.stripe_fixtures import signed

PROBLEM = "https://tollgate.dev/problems/"


def assert_problem(response, status: int, slug: str, *, event_id=None):
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == PROBLEM + slug
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["instance"] == response.wsgi_request.path
    assert body["request_id"] == response["X-Request-ID"]
    assert body.get("event_id") == event_id
    return body


def test_valid_event_is_accepted_and_stored(client, endpoint):
    payload = customer_event()
    before = metric("tollgate_billing_webhook_events_received_total", type="customer.updated")
    response = deliver(client, endpoint, payload)
    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "event_id": payload["id"]}
    row = StripeEvent.objects.get(event_id=payload["id"])
    assert row.payload == payload
    assert (row.type, row.customer_id, row.created) == (
        "customer.updated",
        "cus_t1",
        payload["created"],
    )
    assert (
        metric("tollgate_billing_webhook_events_received_total", type="customer.updated")
        == before + 1
    )
    trigger = WebhookEventTrigger.objects.get(pk=row.trigger_id)
    assert trigger.valid and trigger.webhook_endpoint_id == endpoint.model.id


def test_duplicate_is_200_and_counted(client, endpoint):
    payload = customer_event()
    assert deliver(client, endpoint, payload).json()["status"] == "accepted"
    blocked = metric("billing_webhook_replay_block_total", reason="duplicate_event")
    hits = metric("idempotent_hits_total", operation="webhook")
    response = deliver(client, endpoint, payload)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "duplicate", "event_id": payload["id"]}
    assert metric("billing_webhook_replay_block_total", reason="duplicate_event") == blocked + 1
    assert metric("idempotent_hits_total", operation="webhook") == hits + 1
    assert StripeEvent.objects.filter(event_id=payload["id"]).count() == 1
    assert WebhookEventTrigger.objects.filter(valid=True).count() == 2


def test_unknown_event_type_is_labelled_other(client, endpoint):
    before = metric("tollgate_billing_webhook_events_received_total", type="other")
    deliver(client, endpoint, customer_event("made.up.type"))
    assert metric("tollgate_billing_webhook_events_received_total", type="other") == before + 1


def test_missing_signature(client, endpoint, rejections):
    before = metric("billing_webhook_invalid_sig_total")
    payload = customer_event()
    response = client.post(endpoint.path, data=json.dumps(payload), content_type="application/json")
    assert_problem(response, 400, "webhook-signature-missing")
    assert metric("billing_webhook_invalid_sig_total") == before + 1
    assert rejections()[0]["problem"] == "webhook-signature-missing"
    assert not StripeEvent.objects.exists()
    trigger = WebhookEventTrigger.objects.get()
    assert not trigger.valid and trigger.exception == "webhook-signature-missing"


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda h: h.replace("v1=", "v0="), id="only-v0"),
        pytest.param(lambda h: h.split(",")[0], id="no-v1"),
        pytest.param(lambda h: h[:-4] + "0000", id="tampered-hex"),
        pytest.param(lambda h: "v1=" + h.split("v1=")[1], id="no-timestamp"),
        pytest.param(lambda h: "t=abc," + h.split(",")[1], id="bad-timestamp"),
        pytest.param(lambda h: h + "," + h.split(",")[0], id="two-timestamps"),
    ],
)
def test_bad_signature(client, endpoint, rejections, mangle):
    payload = customer_event()
    body, header = signed(payload, endpoint.secret)
    before = metric("billing_webhook_invalid_sig_total")
    response = client.post(
        endpoint.path,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=mangle(header),
    )
    # Nothing is parsed before the signature matches, so the answer cannot name the event.
    assert_problem(response, 400, "webhook-signature-invalid")
    assert metric("billing_webhook_invalid_sig_total") == before + 1
    assert rejections()[0]["problem"] == "webhook-signature-invalid"
    assert not StripeEvent.objects.exists()


def test_wrong_secret_and_body_tampering(client, endpoint):
    payload = customer_event()
    before = metric("billing_webhook_invalid_sig_total")
    response = deliver(client, endpoint, payload, secret=new_secret())
    assert_problem(response, 400, "webhook-signature-invalid")
    body, header = signed(payload, endpoint.secret)
    tampered = body.replace('"cus_t1"', '"cus_t2"')
    response = client.post(
        endpoint.path, data=tampered, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert_problem(response, 400, "webhook-signature-invalid")
    assert metric("billing_webhook_invalid_sig_total") == before + 2


def test_several_v1_signatures_one_valid(client, endpoint):
    payload = customer_event()
    body, header = signed(payload, endpoint.secret)
    timestamp, good = header.split(",")
    _, other = signed(payload, new_secret(), timestamp=int(timestamp[2:]))
    header = ",".join([timestamp, other.split(",")[1], good, "v0=" + "0" * 64])
    response = client.post(
        endpoint.path, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "offset", [-301, 301, -86400, 10**6], ids=["old", "future", "day-old", "far-future"]
)
def test_timestamp_outside_tolerance(client, endpoint, rejections, offset):
    payload = customer_event()
    stale = metric("billing_webhook_replay_block_total", reason="stale_timestamp")
    invalid = metric("billing_webhook_invalid_sig_total")
    response = deliver(client, endpoint, payload, timestamp=int(time.time()) + offset)
    assert_problem(response, 400, "webhook-timestamp-out-of-tolerance")
    assert metric("billing_webhook_replay_block_total", reason="stale_timestamp") == stale + 1
    assert metric("billing_webhook_invalid_sig_total") == invalid
    assert rejections()[0]["problem"] == "webhook-timestamp-out-of-tolerance"
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize("offset", [-290, 290])
def test_timestamp_inside_tolerance(client, endpoint, offset):
    response = deliver(client, endpoint, customer_event(), timestamp=int(time.time()) + offset)
    assert response.status_code == 200


@pytest.mark.parametrize("debug", [False, True])
def test_djstripe_secret_header_has_no_effect(client, endpoint, settings, debug):
    settings.DEBUG = debug
    forged_secret = new_secret()
    payload = customer_event()
    response = deliver(
        client,
        endpoint,
        payload,
        secret=forged_secret,
        HTTP_X_DJSTRIPE_WEBHOOK_SECRET=forged_secret,
    )
    assert_problem(response, 400, "webhook-signature-invalid")
    # Nor is it ever stored: the header is dropped from the recorded delivery.
    trigger = WebhookEventTrigger.objects.get()
    assert forged_secret not in json.dumps(trigger.headers)
    assert not any(name.lower() == "x-djstripe-webhook-secret" for name in trigger.headers)


def test_recorded_headers_hide_the_signature(client, endpoint):
    payload = customer_event()
    body, header = signed(payload, endpoint.secret)
    client.post(
        endpoint.path, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    trigger = WebhookEventTrigger.objects.get()
    assert trigger.headers["Stripe-Signature"] == "[redacted]"
    assert header.split("v1=")[1] not in json.dumps(trigger.headers)
    assert endpoint.secret not in json.dumps(trigger.headers) + trigger.body


def test_only_stripes_headers_are_recorded_and_secret_values_masked(client, endpoint):
    # Credentials a proxy or a confused sender adds: none of them may reach the stored row,
    # which Finance can read.
    live_key = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
    response = deliver(
        client,
        endpoint,
        customer_event(),
        HTTP_PROXY_AUTHORIZATION="Basic cHJveHk6c2VjcmV0",
        HTTP_X_API_KEY=live_key,
        HTTP_X_AUTH_TOKEN="opaque-session-token-123",
        HTTP_AUTHORIZATION="Bearer abc.def.ghi",
        HTTP_COOKIE="sessionid=s3cr3t",
        HTTP_USER_AGENT=f"Stripe/1.0 (+https://stripe.com/docs/webhooks) {live_key} Bearer xyz",
        HTTP_ACCEPT="*/*; q=0.5, application/xml",
    )
    assert response.status_code == 200
    trigger = WebhookEventTrigger.objects.get()
    stored = json.dumps(trigger.headers)
    leaks = (live_key, "cHJveHk6c2VjcmV0", "opaque-session-token", "abc.def", "s3cr3t", "xyz")
    for leaked in leaks:
        assert leaked not in stored
    assert {name.lower() for name in trigger.headers} <= {
        "accept", "accept-encoding", "cache-control", "content-length", "content-type", "host",
        "stripe-signature", "user-agent", "x-request-id",
    }  # fmt: skip
    assert trigger.headers["Accept"] == "*/*; q=0.5, application/xml"
    assert trigger.headers["User-Agent"].startswith(
        "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(json.dumps({"object": "customer", "id": "cus_1"}).encode(), id="not-event"),
        pytest.param(b"[" * 100000 + b"]" * 100000, id="deep-nesting"),
    ],
)
def test_not_a_stripe_event(client, endpoint, rejections, body):
    # Signed over the raw bytes, as Stripe would (the SDK helper only signs text).
    timestamp = int(time.time())
    digest = hmac.new(endpoint.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    header = f"t={timestamp},v1={digest.hexdigest()}"
    response = client.post(
        endpoint.path, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert_problem(response, 400, "webhook-malformed-event")
    assert rejections()[0]["problem"] == "webhook-malformed-event"
    assert WebhookEventTrigger.objects.filter(valid=False).count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"id": "cus_123"},
        {"id": 5},
        {"type": ""},
        {"created": "1700000000"},
        {"created": True},
        {"livemode": "no"},
        {"data": {"object": "x"}},
        {"data": None},
    ],
)
def test_event_shape_is_checked(client, endpoint, change):
    payload = customer_event()
    payload.update(change)
    response = deliver(client, endpoint, payload)
    assert response.status_code == 400
    assert response.json()["type"] == PROBLEM + "webhook-malformed-event"


def test_unknown_endpoint(client, endpoint, rejections):
    payload = customer_event()
    body, header = signed(payload, endpoint.secret)
    response = client.post(
        f"/stripe/webhook/{uuid.uuid4()}/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )
    assert_problem(response, 404, "webhook-endpoint-unknown")
    assert rejections()[0]["status"] == 404
    assert WebhookEventTrigger.objects.get().webhook_endpoint_id is None


def test_not_a_uuid_is_plain_404(client, db):
    response = client.post(
        "/stripe/webhook/not-a-uuid/", data="{}", content_type="application/json"
    )
    assert response.status_code == 404
    assert response.json()["type"] == PROBLEM + "not-found"


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_wrong_method(client, endpoint, rejections, method):
    response = getattr(client, method)(endpoint.path)
    assert_problem(response, 405, "method-not-allowed")
    assert response["Allow"] == "POST"
    assert rejections()[0]["status"] == 405


def test_declared_body_over_1_mib(client, endpoint, rejections):
    response = client.post(
        endpoint.path,
        data=b"{}",
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE="t=1,v1=00",
        CONTENT_LENGTH=str(1024 * 1024 + 1),
    )
    assert_problem(response, 413, "payload-too-large")
    assert rejections()[0]["problem"] == "payload-too-large"
    stored = WebhookEventTrigger.objects.get().body
    assert stored == "[not stored: 1048577 bytes declared, not read]"


def test_real_body_over_1_mib(client, endpoint):
    payload = customer_event()
    payload["data"]["object"]["description"] = "x" * (1024 * 1024)
    response = deliver(client, endpoint, payload)
    assert_problem(response, 413, "payload-too-large")
    assert not StripeEvent.objects.exists()


def test_rotation_accepts_every_active_secret(client, endpoint):
    from billing import services

    new = new_secret()
    services.webhook_endpoint_configure(
        secrets=[endpoint.secret, new], tolerance=300, url="", uuid=endpoint.model.djstripe_uuid
    )
    assert deliver(client, endpoint, customer_event(), secret=endpoint.secret).status_code == 200
    assert deliver(client, endpoint, customer_event(), secret=new).status_code == 200
    services.webhook_endpoint_configure(
        secrets=[new], tolerance=300, url="", uuid=endpoint.model.djstripe_uuid
    )
    old = deliver(client, endpoint, customer_event(), secret=endpoint.secret)
    assert old.status_code == 400
    assert deliver(client, endpoint, customer_event(), secret=new).status_code == 200


def test_acknowledgement_is_one_insert_statement(client, endpoint):
    # The test transaction defers on_commit, so this counts the web path only, not the task.
    with CaptureQueriesContext(connection) as queries:
        assert deliver(client, endpoint, customer_event()).status_code == 200
    statements = [q["sql"] for q in queries]
    # The endpoint's secrets (then cached by this process), and one statement writing the
    # trigger row and the inbox row together: in autocommit that is also the only commit.
    assert [s.split()[0] for s in statements] == ["SELECT", "WITH"], statements
    assert "djstripe_webhookeventtrigger" in statements[1]
    assert "billing_stripeevent" in statements[1]
    with CaptureQueriesContext(connection) as queries:
        assert deliver(client, endpoint, customer_event(event_id="evt_twice")).status_code == 200
        assert deliver(client, endpoint, customer_event(event_id="evt_twice")).status_code == 200
    # Secrets from the process cache; the duplicate (Redis not told: on_commit is deferred
    # here) is refused by the unique constraint in the same single statement.
    assert [q["sql"].split()[0] for q in queries] == ["WITH", "WITH"]
    assert StripeEvent.objects.filter(event_id="evt_twice").count() == 1
    assert WebhookEventTrigger.objects.filter(valid=True).count() == 3


def test_a_removed_secret_is_refused_at_once_by_this_process(client, endpoint):
    # The secret set is cached per process; a change made here clears the cache immediately.
    assert deliver(client, endpoint, customer_event()).status_code == 200
    WebhookSecret.objects.filter(endpoint=endpoint.model).delete()
    WebhookSecret.objects.create(endpoint=endpoint.model, secret=new_secret())
    refused = customer_event()
    response = deliver(client, endpoint, refused)
    assert_problem(response, 400, "webhook-signature-invalid")


def test_other_processes_see_a_secret_change_within_the_cache_ttl(
    client, endpoint, settings, monkeypatch
):
    from billing import selectors

    assert deliver(client, endpoint, customer_event()).status_code == 200
    # Another process changed the secrets (no signal reaches this one): the cached set is
    # used until it expires, then read again.
    WebhookSecret.objects.filter(endpoint=endpoint.model).update(secret=new_secret())
    assert deliver(client, endpoint, customer_event()).status_code == 200
    # The cache's clock moves past the TTL (only the cache's: nothing else reads this name).
    later = selectors.monotonic() + settings.BILLING_WEBHOOK_ENDPOINT_CACHE_SECONDS + 1
    monkeypatch.setattr(selectors, "monotonic", lambda: later)
    refused = customer_event()
    response = deliver(client, endpoint, refused)
    assert_problem(response, 400, "webhook-signature-invalid")


@pytest.mark.parametrize(
    "value", ["nul \\u0000 inside", "lone surrogate \\ud800"], ids=["nul", "surrogate"]
)
def test_signed_event_postgres_cannot_store_is_400_not_500(client, endpoint, value):
    payload = customer_event()
    body = json.dumps(payload).replace('"cus_t1"', f'"{value}"', 1)
    body, header = signed(body, endpoint.secret)
    response = client.post(
        endpoint.path, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert_problem(response, 400, "webhook-malformed-event", event_id=payload["id"])


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_signed_event_with_a_non_json_number_is_400_not_500(client, endpoint, constant):
    # Python's json accepts these; JSON (RFC 8259) and PostgreSQL's jsonb do not.
    payload = customer_event()
    body = json.dumps(payload).replace('"cus_t1"', constant, 1)
    body, header = signed(body, endpoint.secret)
    response = client.post(
        endpoint.path, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    # Not JSON at all, so no event id is read from it.
    body = assert_problem(response, 400, "webhook-malformed-event")
    assert body["detail"] == "The body is not JSON."
    assert not StripeEvent.objects.filter(event_id=payload["id"]).exists()
