"""Stripe webhook signature verification, stricter than the SDK's `verify_header`.

Stripe signs `"{t}.{raw body}"` with HMAC-SHA256 once per active secret of the endpoint and
sends `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]`. Only `v1` counts (v0 is a
test scheme), every `v1` is compared in constant time against every active secret, and the
timestamp must lie within plus or minus the tolerance: the SDK skips the age check without a
tolerance and never refuses timestamps from the future, which would let a leaked signature be
replayed later.
"""

import hashlib
import hmac
from collections.abc import Iterable

from billing.errors import WebhookSignatureInvalid, WebhookTimestampOutOfTolerance

# A real header is ~150 bytes per secret; anything longer is not worth parsing.
MAX_HEADER_LENGTH = 4096


def parse_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) from a Stripe-Signature header; raises when unusable."""
    if len(header) > MAX_HEADER_LENGTH:
        raise WebhookSignatureInvalid("The Stripe-Signature header is too long.")
    timestamps, signatures = [], []
    for item in header.split(","):
        scheme, _, value = item.strip().partition("=")
        if scheme == "t":
            timestamps.append(value)
        elif scheme == "v1" and value:
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        raise WebhookSignatureInvalid("The Stripe-Signature header has no single valid timestamp.")
    if not signatures:
        raise WebhookSignatureInvalid("The Stripe-Signature header has no v1 signature.")
    return int(timestamps[0]), signatures


def expected_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    signed_payload = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed_payload, hashlib.sha256).hexdigest()


def verify_signature(
    *, header: str, body: bytes, secrets: Iterable[str], tolerance: int, now: float
) -> int:
    """Check a delivery; returns its signed timestamp.

    The signature is checked before the age, so an unsigned request is always reported as a bad
    signature and only genuinely signed old (or future) deliveries count as replays.
    """
    timestamp, signatures = parse_header(header)
    candidates = [s.encode() for s in signatures]
    matched = False
    for secret in secrets:
        expected = expected_signature(secret=secret, timestamp=timestamp, body=body).encode()
        # No early exit: every comparison runs, so timing does not reveal which one matched.
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookSignatureInvalid("No v1 signature matches an active secret of this endpoint.")
    if abs(now - timestamp) > tolerance:
        raise WebhookTimestampOutOfTolerance(
            f"The signed timestamp is more than {tolerance} seconds away from the server's clock."
        )
    return timestamp
