"""Every response carries X-Request-ID, and every log line of the request carries it too."""

import io
import json
import logging
from datetime import timedelta

import pytest
import structlog

from config.logging import redact_secrets, redact_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_output():
    """What the configured root handler writes, as a string buffer."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def test_generated_request_id_is_returned(client):
    response = client.get("/healthz")
    assert len(response["X-Request-ID"]) == 32


def test_sane_caller_request_id_is_kept_and_unsafe_one_replaced(client):
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="req-abc.123")
    assert kept["X-Request-ID"] == "req-abc.123"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert replaced["X-Request-ID"] != "bad id\nwith newline"


def test_log_lines_are_json_with_the_request_id(client, log_output):
    # A 404 makes Django's own logger write a warning during the request.
    response = client.get("/no-such-page", HTTP_X_REQUEST_ID="trace-404")
    assert response.status_code == 404
    err = log_output.getvalue()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line.get("request_id") == "trace-404" for line in lines), err


def test_redaction_masks_secrets_signatures_and_card_numbers():
    event = {
        "event": "webhook from t=1700000000,v1=abcdef0123 with whsec_abc123 key sk_live_xyz",
        "headers": {"Stripe-Signature": "t=1,v1=ff", "Content-Type": "application/json"},
        "card": {"number": "4242424242424242"},
        "note": "paid with 4242 4242 4242 4242",
    }
    out = json.dumps(redact_secrets(None, "info", event))
    for secret in ("whsec_abc123", "sk_live_xyz", "v1=abcdef0123", "v1=ff", "4242424242424242"):
        assert secret not in out
    assert "4242 4242 4242 4242" not in out
    assert "application/json" in out


def test_structlog_logger_carries_request_id(client, log_output):
    log = structlog.get_logger("tollgate.test")
    from config import context

    tokens = context.bind(request_id="rid-from-context")
    try:
        log.info("hello", secret_token="tok_123")
    finally:
        context.reset(tokens)
    line = json.loads(log_output.getvalue().strip().splitlines()[-1])
    assert line["request_id"] == "rid-from-context"
    assert line["secret_token"] == "[redacted]"


def test_a_caller_chosen_request_id_is_never_taken_as_unique(client, django_user_model):
    """Two different writes under one caller-chosen X-Request-ID both happen and are both in
    the trail: nothing (idempotency, audit, dedupe) keys on the request id. Idempotency is the
    Idempotency-Key header's job alone."""
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from audit.models import AuditEvent
    from entitlements.models import Entitlement
    from staff.api_tokens import api_token_create

    support = django_user_model.objects.create_user("sue", password="pw-for-sue-42", is_staff=True)
    support.groups.add(Group.objects.get(name="Support"))
    trader = django_user_model.objects.create_user("tom")
    _, token = api_token_create(user=support, name="tests", lifetime=timedelta(days=1),
                                now=timezone.now())  # fmt: skip
    statuses = [
        client.post(
            "/api/entitlements/grant/",
            data=json.dumps({"user": "tom", "feature": feature, "reason": "ticket 9"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_X_REQUEST_ID="same-id",
        ).status_code
        for feature in ("copy_trading", "vip_support")
    ]
    assert statuses == [201, 201]
    assert Entitlement.objects.filter(user=trader).count() == 2
    granted = AuditEvent.objects.filter(action="entitlements.grant.created", request_id="same-id")
    assert granted.count() == 2


@pytest.mark.parametrize(
    "secret",
    [
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "rk_live_51Habc",
        "pk_live_51Habc",
        "pk_test_51Habc",
        "whsec_with_underscores_1",
        "Bearer eyJhbGciOi.eyJzdWIi.sig-_+/=",
        "bearer lowercase.token",
        "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
        "seti_1Mm8s8LkdIwHu7ixsJ0ydTzJ_secret_NXDsMTmRcRJtV8OazwzRPbB9",
        "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY_secret_fidwbEhqYWAnPCkl",
        "src_client_secret_RFKmYRkrkVHWkeSEr7QLhUAb",
        "cuss_secret_O3UDPzHgS6rGtsdbACkxY4tqnIxpiVJqE3wAc0VRNR",
        "accs_secret__NErVdRAkEJ4Ssd7fPUXNMWPCxLtJ2lA",
        "ek_test_YWNjdF8xMDMyRDgyZVp2S1lsbzJDLDdyY1RtV2N",
    ],
)
def test_redaction_masks_every_stripe_key_and_bearer_token(secret):
    out = redact_text(f"calling with {secret} now")
    assert out == "calling with [redacted] now"


def test_names_that_merely_mention_a_secret_are_not_masked():
    # Constraint and event names are not secrets: an error naming one stays readable.
    text = 'duplicate key value violates unique constraint "billing_secret_unique"'
    assert redact_text(text) == text
