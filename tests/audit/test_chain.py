"""The hash chain links every row to its predecessor; audit_verify finds each kind of tampering."""

import hashlib
import hmac
import itertools
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from audit import chain
from audit.models import AuditEvent, ChainHead
from audit.services import Target, audit_checkpoint_create, audit_event_record
from audit.verification import chain_verify, link_verifies
from config.context import Actor
from tests.audit_trail import audit_seal


def verify(*args):
    return call_command("audit_verify", "--no-record", "--workers", "1", *args, verbosity=0)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_tampering_in_a_later_chunk_is_named_with_and_without_worker_processes(
    trail, tamper, workers
):
    """Small chunks, several in flight: the first bad row is named, not a later one."""
    trail(12)
    tamper(
        ("UPDATE audit_auditevent SET reason = 'edited' WHERE sequence = %s", [7]),
        ("DELETE FROM audit_auditevent WHERE sequence = %s", [10]),
    )
    with pytest.raises(CommandError, match="sequence 7: row content"):
        verify("--chunk-size", "2", "--workers", workers)


def test_rows_form_a_gapless_chain_from_genesis(trail):
    rows = trail(5)
    assert [row.sequence for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == chain.GENESIS_HASH
    for previous, row in itertools.pairwise(rows):
        assert row.prev_hash == previous.hash
    head = ChainHead.objects.get()
    assert (head.sequence, head.hash) == (5, rows[-1].hash)


def test_hash_is_sha256_of_prev_hash_and_canonical_json(trail):
    row = trail(1)[0]
    stored = AuditEvent.objects.values(*chain.CONTENT_FIELDS).get(sequence=row.sequence)
    stored["occurred_at"] = (
        stored["occurred_at"].astimezone(chain.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
    document = json.dumps(stored, sort_keys=True, separators=(",", ":"))
    assert row.hash == hashlib.sha256((row.prev_hash + document).encode()).hexdigest()


def test_intact_chain_verifies_and_records_the_result(trail, capsys):
    trail(3)
    call_command("audit_verify", verbosity=0)
    assert json.loads(capsys.readouterr().out) == {"ok": True, "rows": 3, "head": 3}
    recorded = AuditEvent.objects.get(action="audit.chain.verified")
    assert (recorded.outcome, recorded.meta["head_sequence"]) == ("success", 3)


def verifications(outcome: str) -> float:
    labels = {"outcome": outcome}
    return REGISTRY.get_sample_value("tollgate_audit_verifications_total", labels) or 0.0


def test_altered_row_is_named(trail, tamper):
    trail(6)
    tamper(("UPDATE audit_auditevent SET meta = %s WHERE sequence = 4", ['{"amount": 1}']))
    failures = verifications("failure")
    with pytest.raises(CommandError, match="sequence 4: row content") as failure:
        verify()
    assert failure.value.returncode == 1
    assert verifications("failure") == failures + 1


def test_row_rehashed_by_the_forger_breaks_the_next_link(trail, tamper):
    rows = trail(4)
    values = list(AuditEvent.objects.values_list(*chain.CONTENT_FIELDS).get(sequence=2))
    values[chain.CONTENT_FIELDS.index("reason")] = "forged"
    forged_hash = chain.link_hash(rows[0].hash, tuple(values))
    tamper(
        (
            "UPDATE audit_auditevent SET reason = 'forged', hash = %s WHERE sequence = 2",
            [forged_hash],
        )
    )
    with pytest.raises(CommandError, match="sequence 3: prev_hash"):
        verify()


def test_removed_row_is_named(trail, tamper):
    trail(5)
    tamper(("DELETE FROM audit_auditevent WHERE sequence = %s", [3]))
    with pytest.raises(CommandError, match="sequence 3: row missing"):
        verify()


def test_tail_cut_is_caught_against_the_latest_checkpoint(trail, tamper):
    rows = trail(5)
    audit_checkpoint_create()
    # The forger also rewinds the head, so only the signed checkpoint remembers row 5.
    tamper(
        ("DELETE FROM audit_auditevent WHERE sequence >= %s", [4]),
        ("UPDATE audit_chainhead SET sequence = 3, hash = %s", [rows[2].hash]),
    )
    with pytest.raises(CommandError, match="sequence 4: tail cut"):
        verify()


def test_forged_checkpoint_signature_fails(trail, tamper):
    trail(2)
    checkpoint = audit_checkpoint_create()
    tamper(("UPDATE audit_auditcheckpoint SET sequence = 1 WHERE id = %s", [checkpoint.pk]))
    with pytest.raises(CommandError, match="sequence 1: checkpoint signature"):
        verify()


def test_checkpoint_is_signed_with_the_configured_ed25519_key(trail, settings, capsys):
    rows = trail(3)
    private = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = private.private_bytes_raw().hex()
    call_command("audit_checkpoint")
    printed = json.loads(capsys.readouterr().out)
    assert (printed["sequence"], printed["hash"], printed["algorithm"]) == (
        3,
        rows[-1].hash,
        "Ed25519",
    )
    leaves = [hashlib.sha256(b"\x00" + bytes.fromhex(row.hash)).digest() for row in rows]
    node = lambda left, right: hashlib.sha256(b"\x01" + left + right).digest()  # noqa: E731
    assert printed["root"] == node(node(leaves[0], leaves[1]), leaves[2]).hex()  # RFC 9162, n=3
    statement = json.dumps(
        {key: printed[key] for key in ("created_at", "hash", "root", "sequence")},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    private.public_key().verify(bytes.fromhex(printed["signature"]), statement)  # raises if not
    assert chain_verify().ok
    settings.AUDIT_SIGNING_KEY = Ed25519PrivateKey.generate().private_bytes_raw().hex()
    assert chain_verify().problem == "checkpoint signature does not verify"
    # The published public key is all it takes.
    assert chain_verify(public_key=private.public_key()).ok


def test_legacy_hmac_checkpoints_still_verify_with_their_key(trail, settings):
    rows = trail(2)
    settings.AUDIT_CHECKPOINT_KEY = "k" * 40
    checkpoint = audit_checkpoint_create(key="k" * 40)
    assert (checkpoint.algorithm, checkpoint.root) == ("HMAC-SHA256", "")
    message = json.dumps(
        {
            "created_at": chain.format_time(checkpoint.created_at),
            "hash": rows[-1].hash,
            "sequence": 2,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    assert checkpoint.signature == hmac.new(b"k" * 40, message, hashlib.sha256).hexdigest()
    assert chain_verify().ok
    settings.AUDIT_CHECKPOINT_KEY = "another key of forty characters........."
    assert chain_verify().problem == "checkpoint signature does not verify"


def test_link_verifies_for_one_row(trail, tamper):
    rows = trail(3)
    assert link_verifies(AuditEvent.objects.get(sequence=2))
    tamper(("UPDATE audit_auditevent SET actor_name = 'mallory' WHERE sequence = 2", []))
    assert not link_verifies(AuditEvent.objects.get(sequence=2))
    assert link_verifies(AuditEvent.objects.get(sequence=rows[0].sequence))


def test_lost_head_row_is_rebuilt_from_the_newest_event(trail):
    rows = trail(2)
    ChainHead.objects.all().delete()
    (third,) = audit_seal(
        audit_event_record(action="billing.payment.failed", actor=Actor(kind="stripe"))
    )
    assert (third.sequence, third.prev_hash) == (3, rows[-1].hash)
    assert ChainHead.objects.get().sequence == 3
    assert chain_verify().ok


text = st.one_of(st.text(max_size=40), st.sampled_from(["a\x00b", "\ud800x", "=1+1", "é\u2028"]))
meta_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), text, st.lists(text, max_size=3)
)


# The db fixture is not reset between examples: fine, the chain just grows across them.
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    reason=text,
    target_id=text,
    user_agent=text,
    meta=st.dictionaries(st.sampled_from(["amount", "currency", "customer", "email"]), meta_values),
)
def test_any_recorded_row_still_verifies_after_the_database_round_trip(
    db, reason, target_id, user_agent, meta
):
    """Whatever text reaches a row (unicode, quotes, NUL, lone surrogates), it is stored and
    the stored row re-hashes equal."""
    event = audit_event_record(
        action="billing.payment.completed",
        actor=Actor(kind="stripe"),
        target=Target("invoice", target_id, target_id),
        reason=reason,
        user_agent=user_agent,
        meta=meta,
    )
    (event,) = audit_seal(event)
    assert link_verifies(AuditEvent.objects.get(sequence=event.sequence))
    assert chain_verify().ok


def test_pruned_prefix_without_an_anchor_is_a_missing_row(trail, tamper):
    trail(6)
    tamper(("DELETE FROM audit_auditevent WHERE sequence <= %s", [3]))
    with pytest.raises(CommandError, match="sequence 1: row missing"):
        verify()


def test_pruned_prefix_anchored_by_a_checkpoint_verifies_and_says_so(trail, tamper, capsys):
    trail(6)
    call_command("audit_checkpoint", "--at", "3")  # the DBA's step before pruning
    audit_seal()  # its audit.checkpoint.created row becomes row 7
    tamper(("DELETE FROM audit_auditevent WHERE sequence <= %s", [3]))
    capsys.readouterr()
    verify()
    assert json.loads(capsys.readouterr().out) == {"ok": True, "rows": 4, "head": 7, "from": 4}


def test_checkpoint_at_a_missing_sequence_is_refused(trail):
    trail(2)
    with pytest.raises(CommandError, match="No audit row with sequence 9"):
        call_command("audit_checkpoint", "--at", "9")
