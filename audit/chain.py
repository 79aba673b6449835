"""The hash chain: canonical JSON of a row's content and the SHA-256 link to its predecessor.

Shared by the writer (services) and the verifier, so both hash exactly the same bytes. The
verifier works on values_list tuples in CONTENT_FIELDS order: no model instances, for speed.
"""

import hashlib
import hmac
import json
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quote  # the C encoder json.dumps uses
from typing import Any

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
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def format_time(value: datetime | str) -> str:
    """UTC, ISO 8601, always with microseconds: one spelling per instant (a string is taken to
    be spelled so already, as in an exported checkpoint)."""
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# The canonical JSON is what json.dumps(row, sort_keys=True, separators=(",", ":")) gives
# (tests/audit/test_chain.py checks exactly that); it is spelled out here because the verifier
# runs it on every row and this is three times faster than building and sorting a dict.
assert tuple(sorted(CONTENT_FIELDS)) == CONTENT_FIELDS  # the template relies on it
_TEMPLATE = "{" + ",".join(f'"{name}":%s' for name in CONTENT_FIELDS) + "}"


def canonical_json(values: tuple[Any, ...]) -> str:
    """`values` in CONTENT_FIELDS order. The verifier's raw SQL hands occurred_at already
    format_time()d by PostgreSQL and meta as jsonb text (Django's psycopg loader keeps it text)."""
    (
        action, actor_id, actor_name, actor_role, actor_type, ip, meta, occurred_at, outcome,
        reason, request_id, sequence, stripe_event_id, target_id, target_repr, target_type,
        user_agent,
    ) = values  # fmt: skip
    if not isinstance(occurred_at, str):
        occurred_at = format_time(occurred_at)
    if isinstance(meta, str):
        meta = json.loads(meta)
    quote = _quote
    return _TEMPLATE % (
        quote(action), quote(actor_id), quote(actor_name), quote(actor_role), quote(actor_type),
        quote(ip), _ENCODER.encode(meta), quote(occurred_at), quote(outcome), quote(reason),
        quote(request_id), int(sequence), quote(stripe_event_id), quote(target_id),
        quote(target_repr), quote(target_type), quote(user_agent),
    )  # fmt: skip


def link_hash(prev_hash: str, values: tuple[Any, ...]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(values)).encode()).hexdigest()


def first_unhashed(rows: list[tuple[Any, ...]]) -> int | None:
    """Index of the first row (CONTENT_FIELDS values + prev_hash + hash) whose stored hash is
    not the hash of its stored prev_hash and content; None when all match. Pure: the verifier
    may run it in worker processes, which import this module without Django."""
    for index, row in enumerate(rows):
        if link_hash(row[-2], row[:-2]) != row[-1]:
            return index
    return None


def checkpoint_message(*, sequence: int, head_hash: str, created_at: datetime) -> bytes:
    return _ENCODER.encode(
        {"created_at": format_time(created_at), "hash": head_hash, "sequence": sequence}
    ).encode()


def checkpoint_signature(key: str, *, sequence: int, head_hash: str, created_at: datetime) -> str:
    message = checkpoint_message(sequence=sequence, head_hash=head_hash, created_at=created_at)
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def checkpoint_statement(
    *, sequence: int, head_hash: str, root: str, created_at: datetime
) -> bytes:
    """What an Ed25519 checkpoint signs: tree size (= sequence), chain head, tree root, time."""
    return _ENCODER.encode(
        {
            "created_at": format_time(created_at),
            "hash": head_hash,
            "root": root,
            "sequence": sequence,
        }
    ).encode()
