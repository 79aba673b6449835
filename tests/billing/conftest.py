"""Fixtures of the billing tests: a configured endpoint, signed deliveries, metric reads."""

import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from billing import services, signals
from billing.rejections import rejection_counts_flush
from tests.stripe_fixtures import event, resource, signed


@dataclass
class Endpoint:
    path: str
    secret: str
    model: object


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(16)


@pytest.fixture
def endpoint(db) -> Endpoint:
    secret = new_secret()
    model = services.webhook_endpoint_configure(secrets=[secret], tolerance=300, url="")
    return Endpoint(path=f"/stripe/webhook/{model.djstripe_uuid}/", secret=secret, model=model)


def customer_event(event_type: str = "customer.updated", *, customer_id: str = "cus_t1", **kw):
    # Stripe's example customer has a discount without a coupon, which no real customer has.
    return event(event_type, resource("customer", id=customer_id, discount=None), **kw)


def deliver(client, endpoint: Endpoint, payload, *, secret=None, timestamp=None, **headers):
    body, signature = signed(payload, secret or endpoint.secret, timestamp=timestamp)
    return client.post(
        endpoint.path,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
        **headers,
    )


@contextmanager
def received(signal):
    """Collect the kwargs of every send of `signal` while the block runs."""
    seen = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    uid = f"test-collector-{id(seen)}"
    signal.connect(receiver, dispatch_uid=uid, weak=False)
    try:
        yield seen
    finally:
        signal.disconnect(dispatch_uid=uid)


@pytest.fixture
def rejections():
    """Call it for the webhook_rejected reports so far: it closes every bucket (as the beat task
    does three minutes later) and returns what was sent."""
    with received(signals.webhook_rejected) as seen:

        def flush() -> list[dict]:
            rejection_counts_flush(now=timezone.now() + timedelta(minutes=3))
            return seen

        yield flush


@pytest.fixture
def processed():
    with received(signals.stripe_event_processed) as seen:
        yield seen


@pytest.fixture
def reprocessed():
    with received(signals.dead_letter_reprocessed) as seen:
        yield seen
