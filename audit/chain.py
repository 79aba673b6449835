"""The hash chain: canonical JSON of a row's content and the SHA-256 link to its predecessor.

Shared by the writer (services) and the verifier, so both hash exactly the same bytes. The
verifier works on values_list tuples in CONTENT_FIELDS order: no model instances, for speed.
"""

import hashlib
import hmac
import json
from datetime import UTC, datetime

GENESIS_HASH = "0" * 64

# Every stored column except prev_hash (hashed as the prefix) and hash itself, sorted: the
# canonical JSON has sorted keys, so hashing in this order needs no per-row sort of names.
CONTENT_FIELDS = (
    "action",
    "actor_id",
    "actor_name",
    "actor_role",
    "actor_type",
    "ip",
    "meta",
    "occurred_at",
    "outcome",
    "reason",
    "request_id",
    "sequence",
    "stripe_event_id",
    "target_id",
    "target_repr",
    "target_type",
    "user_agent",
)
_OCCURRED_AT = CONTENT_FIELDS.index("occurred_at")
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def format_time(value: datetime) -> str:
    """UTC, ISO 8601, always with microseconds: one spelling per instant."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(values: tuple) -> str:
    content = dict(zip(CONTENT_FIELDS, values, strict=True))
    content["occurred_at"] = format_time(values[_OCCURRED_AT])
    return _ENCODER.encode(content)


def link_hash(prev_hash: str, values: tuple) -> str:
    return hashlib.sha256((prev_hash + canonical_json(values)).encode()).hexdigest()


def checkpoint_message(*, sequence: int, head_hash: str, created_at: datetime) -> bytes:
    return _ENCODER.encode(
        {"created_at": format_time(created_at), "hash": head_hash, "sequence": sequence}
    ).encode()


def checkpoint_signature(key: str, *, sequence: int, head_hash: str, created_at: datetime) -> str:
    message = checkpoint_message(sequence=sequence, head_hash=head_hash, created_at=created_at)
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
