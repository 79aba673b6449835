"""Realistic Stripe payloads for tests, built from Stripe's own example objects.

The examples come from Stripe's OpenAPI fixtures (`../shared/stripe/fixtures3.json`, beside
this checkout; TOLLGATE_STRIPE_FIXTURES overrides the path). Tests take a resource, set the
fields their scenario needs, and wrap it in an `event` envelope. Webhooks are signed with the
official stripe SDK's own helper, never with a signer of ours.
"""

import copy
import functools
import itertools
import json
import os
import time
from pathlib import Path

import stripe

ROOT = Path(__file__).resolve().parents[1]
FIXTURES_PATH = Path(
    os.environ.get("TOLLGATE_STRIPE_FIXTURES", ROOT.parent / "shared" / "stripe" / "fixtures3.json")
)
_sequence = itertools.count(1)


@functools.cache
def _resources() -> dict:
    with open(FIXTURES_PATH, encoding="utf-8") as handle:
        return json.load(handle)["resources"]


def resource(name: str, **overrides) -> dict:
    """A deep copy of Stripe's example `name` object with top-level fields overridden."""
    obj = copy.deepcopy(_resources()[name])
    obj.update(overrides)
    return obj


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
