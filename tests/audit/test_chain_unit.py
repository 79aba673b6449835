"""audit/chain.py alone: canonical JSON, links, the first bad row, checkpoint signatures.

No database: part of `make mutation`'s test set (tests/audit/test_chain.py covers the chain
through the writer and the verifier on PostgreSQL).
"""

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta, timezone

from audit import chain

WHEN = datetime(2026, 5, 27, 10, 11, 12, 5, tzinfo=UTC)


def row(**overrides) -> dict:
    values = {
        "action": "entitlements.grant.created",
        "actor_id": "7",
        "actor_name": "sam",
        "actor_role": "SUPPORT",
        "actor_type": "user",
        "ip": "10.0.0.1",
        "meta": {"b": [1, "é"], "a": None},
        "occurred_at": WHEN,
        "outcome": "success",
        "reason": 'ticket "3"',
        "request_id": "req-1",
        "sequence": 41,
        "stripe_event_id": "evt_1",
        "target_id": "12",
        "target_repr": "copy_trading for ann",
        "target_type": "entitlements.entitlement",
        "user_agent": "curl/8",
    }
    values.update(overrides)
    return values


def as_tuple(values: dict) -> tuple:
    return tuple(values[name] for name in chain.CONTENT_FIELDS)


def reference_json(values: dict) -> str:
    """The definition the fast template must equal: json.dumps with sorted keys."""
    values = {**values, "occurred_at": chain.format_time(values["occurred_at"])}
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


def test_format_time_is_utc_with_microseconds_whatever_the_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # the process's own zone must not matter
    time.tzset()
    try:
        assert chain.format_time(WHEN) == "2026-05-27T10:11:12.000005Z"
    finally:
        monkeypatch.undo()
        time.tzset()
    assert chain.format_time(WHEN) == "2026-05-27T10:11:12.000005Z"
    east = WHEN.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert chain.format_time(east) == "2026-05-27T10:11:12.000005Z"
    assert chain.format_time(WHEN.replace(microsecond=0)) == "2026-05-27T10:11:12.000000Z"


def test_canonical_json_is_sorted_compact_ascii_json_of_every_field():
    values = row()
    text = chain.canonical_json(as_tuple(values))
    assert text == reference_json(values)
    assert text.isascii() and '"a":null,"b":[1,"\\u00e9"]' in text
    assert json.loads(text)["sequence"] == 41


def test_canonical_json_takes_preformatted_time_and_meta_as_jsonb_text():
    values = row()
    as_stored = {
        **values,
        "occurred_at": chain.format_time(WHEN),
        "meta": '{"b": [1, "é"], "a": null}',
    }
    assert chain.canonical_json(as_tuple(as_stored)) == reference_json(values)


def test_canonical_json_changes_with_every_field():
    base = chain.canonical_json(as_tuple(row()))
    for name in chain.CONTENT_FIELDS:
        changed = {
            "meta": {"b": [2]},
            "occurred_at": WHEN + timedelta(microseconds=1),
            "sequence": 42,
        }.get(name, "other")
        assert chain.canonical_json(as_tuple(row(**{name: changed}))) != base, name


def test_link_hash_is_sha256_of_prev_hash_then_content():
    values = as_tuple(row())
    prev = "ab" * 32
    expected = hashlib.sha256((prev + chain.canonical_json(values)).encode()).hexdigest()
    assert chain.link_hash(prev, values) == expected
    assert chain.link_hash(chain.GENESIS_HASH, values) != expected
    assert chain.GENESIS_HASH == "0" * 64


def linked(count: int) -> list[tuple]:
    rows, prev = [], chain.GENESIS_HASH
    for sequence in range(1, count + 1):
        values = as_tuple(row(sequence=sequence))
        digest = chain.link_hash(prev, values)
        rows.append((*values, prev, digest))
        prev = digest
    return rows


def test_first_unhashed_names_the_first_row_whose_hash_does_not_match():
    rows = linked(4)
    assert chain.first_unhashed(rows) is None
    assert chain.first_unhashed([]) is None
    for bad in (0, 2, 3):
        tampered = list(rows)
        tampered[bad] = (*rows[bad][:-1], "f" * 64)
        assert chain.first_unhashed(tampered) == bad
    edited = list(rows)
    edited[1] = ("edited", *rows[1][1:])
    edited[3] = ("edited", *rows[3][1:])
    assert chain.first_unhashed(edited) == 1


def test_checkpoint_is_an_hmac_of_sorted_compact_json():
    message = chain.checkpoint_message(sequence=9, head_hash="cd" * 32, created_at=WHEN)
    assert message == (
        b'{"created_at":"2026-05-27T10:11:12.000005Z","hash":"' + b"cd" * 32 + b'","sequence":9}'
    )
    signature = chain.checkpoint_signature("key", sequence=9, head_hash="cd" * 32, created_at=WHEN)
    assert signature == hmac.new(b"key", message, hashlib.sha256).hexdigest()
    other = chain.checkpoint_signature("kez", sequence=9, head_hash="cd" * 32, created_at=WHEN)
    assert other != signature
