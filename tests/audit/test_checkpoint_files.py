"""Checkpoints leave the database: written once to AUDIT_CHECKPOINT_DIR, cross-checked by
`audit_verify --against DIR`. The red team has database superuser rights and the app's key."""

import json
import os

import pytest
from django.core.management import CommandError, call_command

from audit import chain, merkle, signing
from audit.checkpoint_files import checkpoint_file_write
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import audit_checkpoint_sign
from audit.verification import chain_verify


@pytest.fixture
def exported(trail, settings, tmp_path, django_capture_on_commit_callbacks):
    """Rows 1-6, a checkpoint of them exported to a directory (its audit row is row 7), then
    rows 8-9 after it."""
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path)
    trail(6)
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = audit_checkpoint_sign()
    trail(2)
    return checkpoint, tmp_path


def verify_against(directory) -> None:
    call_command("audit_verify", "--against", str(directory), "--no-record", verbosity=0)


def test_each_checkpoint_is_written_once_to_the_directory(exported):
    checkpoint, directory = exported
    (path,) = directory.iterdir()
    document = json.loads(path.read_text())
    assert document == {
        "id": checkpoint.pk, "sequence": 6, "hash": checkpoint.hash, "root": checkpoint.root,
        "created_at": chain.format_time(checkpoint.created_at), "algorithm": "Ed25519",
        "signature": checkpoint.signature,
    }  # fmt: skip
    assert not os.access(path, os.W_OK) or os.geteuid() == 0  # read-only file
    with pytest.raises(FileExistsError):
        checkpoint_file_write(checkpoint, str(directory))  # never overwritten
    verify_against(directory)  # intact: passes


def rewrite_from(first: int, tamper) -> None:
    """The attack: edit row `first`, re-chain every later row, re-sign every checkpoint with
    the application's key, as a superuser with the triggers off."""
    rows = list(AuditEvent.objects.filter(sequence__isnull=False).order_by("sequence"))
    statements, prev_hash, new_hashes = [], chain.GENESIS_HASH, []
    for row in rows:
        if row.sequence == first:
            row.reason = "rewritten"
        if row.sequence >= first:
            values = tuple(getattr(row, name) for name in chain.CONTENT_FIELDS)
            row.prev_hash, row.hash = prev_hash, chain.link_hash(prev_hash, values)
            statements.append((
                "UPDATE audit_auditevent SET reason = %s, prev_hash = %s, hash = %s "
                "WHERE sequence = %s", [row.reason, row.prev_hash, row.hash, row.sequence],
            ))  # fmt: skip
        prev_hash = row.hash
        new_hashes.append(row.hash)
    for checkpoint in AuditCheckpoint.objects.all():
        size = checkpoint.sequence
        root = merkle.mth([merkle.leaf_hash(value) for value in new_hashes[:size]]).hex()
        statement = chain.checkpoint_statement(
            sequence=size, head_hash=new_hashes[size - 1], root=root,
            created_at=checkpoint.created_at,
        )  # fmt: skip
        statements.append((
            "UPDATE audit_auditcheckpoint SET hash = %s, root = %s, signature = %s WHERE id = %s",
            [new_hashes[size - 1], root, signing.sign(statement), checkpoint.pk],
        ))  # fmt: skip
    tamper(*statements)


@pytest.mark.parametrize("first", [1, 3, 6])
def test_a_rewritten_and_resigned_chain_is_caught_against_the_exported_checkpoints(
    exported, tamper, first
):
    _, directory = exported
    rewrite_from(first, tamper)
    # Inside the database alone the forgery is perfect: this is what the directory is for.
    assert chain_verify().ok
    with pytest.raises(CommandError, match="checkpoint differs from its copy outside"):
        verify_against(directory)


def test_rows_after_the_last_exported_checkpoint_are_not_protected_by_it(exported, tamper):
    """The documented limit: a rewrite after the last exported checkpoint (row 8 here) goes
    unnoticed until a later checkpoint is exported."""
    _, directory = exported
    rewrite_from(8, tamper)
    verify_against(directory)


def test_deleted_checkpoint_rows_are_caught(exported, tamper):
    checkpoint, directory = exported
    tamper(("DELETE FROM audit_auditcheckpoint", []))
    with pytest.raises(CommandError, match="missing from it"):
        verify_against(directory)
    # Even without the directory: the trail's own audit.checkpoint.created row names it.
    result = chain_verify()
    assert not result.ok
    assert result.problem == f"checkpoint(s) [{checkpoint.pk}] named by the trail are missing"


def test_a_forged_exported_file_is_caught(exported):
    _, directory = exported
    (path,) = directory.iterdir()
    document = json.loads(path.read_text())
    os.chmod(path, 0o644)
    path.write_text(json.dumps({**document, "root": "0" * 64}))
    with pytest.raises(CommandError, match="differs from its copy"):
        verify_against(directory)
