"""The Merkle tree of the sealed rows (RFC 9162): roots, inclusion and consistency proofs."""

import hashlib
import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit import merkle
from audit.models import AuditEvent, AuditTreeNode
from audit.sealing import audit_seal_pending
from audit.services import audit_checkpoint_create, audit_event_record
from audit.tree import tree_root
from config.context import Actor

pytestmark = pytest.mark.usefixtures("postgres")


def leaves(count: int) -> list[bytes]:
    return [hashlib.sha256(f"leaf {i}".encode()).digest() for i in range(count)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 32, 33])
def test_proofs_match_the_rfc_definitions(size):
    data = leaves(size)
    stored: dict[tuple[int, int], bytes] = {(0, i): leaf for i, leaf in enumerate(data)}
    frontier = merkle.Frontier()
    for leaf in data:
        stored.update({(level, index): value for level, index, value in frontier.append(leaf)})
    root = merkle.mth(data)
    assert frontier.root() == merkle.root(size, lambda *node: stored[node]) == root
    for index in range(size):
        path = merkle.inclusion_path(index, size, lambda *node: stored[node])
        assert merkle.verify_inclusion(index, size, data[index], path, root)
        assert not merkle.verify_inclusion(index, size, b"\0" * 32, path, root)
    for first in range(1, size + 1):
        path = merkle.consistency_path(first, size, lambda *node: stored[node])
        assert merkle.verify_consistency(first, size, merkle.mth(data[:first]), root, path)
        if first < size:
            forged = merkle.mth([*data[:-1], b"\1" * 32])
            assert not merkle.verify_consistency(
                first, size, merkle.mth(data[:first]), forged, path
            )


def test_known_answer_of_the_empty_and_one_leaf_trees():
    assert merkle.mth([]).hex() == hashlib.sha256(b"").hexdigest()
    assert merkle.leaf_hash("00" * 32) == hashlib.sha256(b"\0" * 33).digest()


def write(count: int) -> None:
    for i in range(count):
        audit_event_record(action="billing.payment.completed", actor=Actor(kind="stripe"),
                           meta={"amount": i})  # fmt: skip


def row_leaves() -> list[bytes]:
    hashes = AuditEvent.objects.filter(sequence__isnull=False).order_by("sequence")
    return [merkle.leaf_hash(value) for value in hashes.values_list("hash", flat=True)]


def test_the_sealer_stores_the_tree_and_proofs_verify_against_signed_checkpoints(db, capsys):
    write(11)
    audit_seal_pending(include_own_transaction=True, limit=4)  # batches of 4, 4 and 3 rows
    first = audit_checkpoint_create()
    write(10)
    audit_seal_pending(include_own_transaction=True, limit=3)
    second = audit_checkpoint_create()
    data = row_leaves()
    assert (first.sequence, second.sequence) == (11, 21)
    assert first.root == merkle.mth(data[:11]).hex()
    assert second.root == merkle.mth(data).hex() == tree_root(21).hex()
    # Complete subtrees only: 21 leaves make 10 + 5 + 2 + 1 nodes above the leaves.
    assert AuditTreeNode.objects.count() == 18

    for sequence in (1, 7, 12, 21):
        call_command("audit_prove", str(sequence))
        proof = json.loads(capsys.readouterr().out)
        assert proof["checkpoint"]["root"] == proof["root"] == second.root
        path = [bytes.fromhex(node) for node in proof["path"]]
        assert merkle.verify_inclusion(
            sequence - 1, 21, data[sequence - 1], path, bytes.fromhex(second.root)
        )
    call_command("audit_prove", "--consistency", "11", "21")
    proof = json.loads(capsys.readouterr().out)
    path = [bytes.fromhex(node) for node in proof["path"]]
    assert merkle.verify_consistency(
        11, 21, bytes.fromhex(first.root), bytes.fromhex(second.root), path
    )


def test_an_inclusion_proof_reads_a_few_rows_not_the_trail(db):
    write(100)
    audit_seal_pending(include_own_transaction=True, limit=30)
    from audit.tree import inclusion_proof

    with CaptureQueriesContext(connection) as queries:
        proof = inclusion_proof(37, 100)
    # Two reads for the path (leaves, nodes), two for the root: never one per row.
    assert len(queries) <= 6
    assert merkle.verify_inclusion(
        36, 100, row_leaves()[36], [bytes.fromhex(n) for n in proof["path"]],
        merkle.mth(row_leaves()),
    )  # fmt: skip


def test_a_trail_sealed_before_the_tree_existed_gets_its_tree_built(db, tamper):
    write(9)
    audit_seal_pending(include_own_transaction=True)
    tamper(("DELETE FROM audit_audittreenode", []))  # as before migration 0005
    write(4)
    audit_seal_pending(include_own_transaction=True)
    assert tree_root(13) == merkle.mth(row_leaves())
