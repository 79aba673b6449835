"""Signed Stripe events for the benchmarks, built from Stripe's own example objects."""

import json
import time
import uuid

import stripe

from bench.loadgen import Request
from tests.stripe_fixtures import event, resource

DAY = 86400


def _ids(prefix: str, run: str, n: int) -> str:
    return f"{prefix}_bench{run}{n:07d}"


def subscription_lifecycle(*, user_id: int, n: int, run: str, created: int) -> list[dict]:
    """checkout.session.completed then customer.subscription.created (premium, active)."""
    customer, subscription = _ids("cus", run, n), _ids("sub", run, n)
    session = resource(
        "checkout.session",
        id=_ids("cs", run, n), customer=customer, subscription=subscription,
        client_reference_id=str(user_id), mode="subscription", status="complete",
        payment_status="paid", amount_total=2000, currency="usd", metadata={},
        created=created,
    )  # fmt: skip
    sub = resource(
        "subscription",
        id=subscription, customer=customer, status="active", created=created,
        cancel_at_period_end=False, cancel_at=None, canceled_at=None, ended_at=None,
        metadata={},
    )  # fmt: skip
    item = sub["items"]["data"][0]
    item.update(
        subscription=subscription, current_period_start=created,
        current_period_end=created + 30 * DAY,
    )  # fmt: skip
    item["price"].update(lookup_key="premium", id=f"price_bench_premium{run}", metadata={})
    return [
        event("checkout.session.completed", session, event_id=_ids("evt", run, 2 * n),
              created=created),
        event("customer.subscription.created", sub, event_id=_ids("evt", run, 2 * n + 1),
              created=created + 1),
    ]  # fmt: skip


def sign(payload: dict, secret: str, path: str) -> Request:
    body = json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, secret)
    return Request(
        path=path,
        body=body.encode(),
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def now() -> int:
    return int(time.time())
