"""Checkpoints leave the database: written once to AUDIT_CHECKPOINT_DIR, cross-checked by
`audit_verify --against DIR`. The red team has database superuser rights and the app's key."""

import json
import os

import pytest
from django.core.management import CommandError, call_command

from audit import chain
from audit.checkpoint_files import CheckpointConflict, checkpoint_file_write
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import audit_checkpoint_sign, audit_event_record
from audit.verification import chain_verify
from config.context import Actor
from tests.audit.attacks import rewrite_from
from tests.audit_trail import audit_seal


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
        "signature": checkpoint.signature, "consistency": [],
    }  # fmt: skip
    assert not os.access(path, os.W_OK) or os.geteuid() == 0  # read-only file
    checkpoint_file_write(checkpoint, str(directory))  # the same bytes again: a harmless retry
    checkpoint.signature = "00" * 64
    with pytest.raises(CheckpointConflict, match="already exists with different content"):
        checkpoint_file_write(checkpoint, str(directory))  # never overwritten
    assert json.loads(path.read_text()) == document
    verify_against(directory)  # intact: passes


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


def test_a_checkpoint_that_could_not_be_exported_is_still_named_by_the_trail(
    transactional_db, settings, tmp_path
):
    """Committed for real: the export runs after the commit and fails loudly, but the
    checkpoint and the trail's audit.checkpoint.created row naming it committed together."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.AUDIT_CHECKPOINT_DIR = str(blocker)
    audit_seal(audit_event_record(action="billing.payment.completed", actor=Actor(kind="stripe")))
    with pytest.raises(OSError):
        audit_checkpoint_sign()
    (checkpoint,) = AuditCheckpoint.objects.all()
    assert AuditEvent.objects.filter(
        action="audit.checkpoint.created", target_id=str(checkpoint.pk)
    ).exists()
