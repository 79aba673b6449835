"""Realistic Stripe payloads for tests, built from Stripe's own example objects.

The examples are the ones the simulator and the fake Stripe API use
(billing/simulator/stripe_examples.json, read by billing.simulator.examples). Tests take a
resource, set the fields their scenario needs, and wrap it in an `event` envelope. Webhooks are
signed with the official stripe SDK's own helper, never with a signer of ours.
"""

import itertools
import json
import os
import time

import stripe

from billing.simulator.examples import example as resource

_sequence = itertools.count(1)


def unique_id(prefix: str) -> str:
    return f"{prefix}_test{next(_sequence):06d}{os.getpid()}"


def event(
    event_type: str,
    obj: dict,
    *,
    event_id: str | None = None,
    created: int | None = None,
    previous_attributes: dict | None = None,
) -> dict:
    """Wrap `obj` in Stripe's example `event` envelope."""
    envelope = resource("event")
    envelope.update(
        id=event_id or unique_id("evt"),
        type=event_type,
        created=int(created if created is not None else time.time()),
        api_version="2026-05-27.dahlia",
        livemode=False,
        pending_webhooks=1,
        data={"object": obj},
    )
    if previous_attributes is not None:
        envelope["data"]["previous_attributes"] = previous_attributes
    return envelope


def signed(payload: dict | str, secret: str, *, timestamp: int | None = None) -> tuple[str, str]:
    """Serialise a payload and sign it: returns (body, Stripe-Signature header)."""
    body = payload if isinstance(payload, str) else json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)
    return body, header
