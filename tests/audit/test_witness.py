"""The independent witness (`audit_witness`, audit/witness.py): its own key, no database, the
exported checkpoint directory and the application's public key. The red team has database
superuser rights and the application's signing key, not the witness's."""

import json
from io import StringIO

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command

from audit import chain, signing
from audit.checkpoint_files import checkpoint_file_write
from audit.models import AuditCheckpoint
from audit.services import audit_checkpoint_sign
from tests.audit.attacks import rewrite_from


@pytest.fixture
def keys(tmp_path):
    """The witness's private key and its public key, the app's public key: PEM files."""
    witness = Ed25519PrivateKey.generate()
    witness_file = tmp_path / "witness.key"
    witness_file.write_bytes(
        witness.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    witness_public = tmp_path / "witness.pem"
    witness_public.write_text(signing.public_key_pem(witness))
    app_public = tmp_path / "app.pem"
    app_public.write_text(signing.public_key_pem())
    return {"key": witness_file, "public": witness_public, "app": app_public}


@pytest.fixture
def directory(settings, tmp_path):
    folder = tmp_path / "checkpoints"
    settings.AUDIT_CHECKPOINT_DIR = str(folder)
    return folder


@pytest.fixture
def sign(django_capture_on_commit_callbacks):
    def run() -> AuditCheckpoint:
        with django_capture_on_commit_callbacks(execute=True):
            return audit_checkpoint_sign()

    return run


def witness(directory, keys) -> list[dict]:
    """Run the witness; the cosignatures it wrote this time."""
    out = StringIO()
    call_command(
        "audit_witness", str(directory), "--public-key", str(keys["app"]),
        "--key-file", str(keys["key"]), stdout=out,
    )  # fmt: skip
    return [json.loads(line) for line in out.getvalue().splitlines()]


def verify(directory, keys) -> None:
    call_command(
        "audit_verify", "--against", str(directory), "--witness-public-key", str(keys["public"]),
        "--no-record", verbosity=0,
    )  # fmt: skip


def cosignature_names(directory) -> list[str]:
    return sorted(path.name for path in directory.glob("cosignature-*.json"))


def test_the_witness_cosigns_each_checkpoint_that_extends_the_last(
    trail, directory, keys, sign, django_assert_num_queries
):
    trail(6)
    first = sign()
    with django_assert_num_queries(0):  # the witness never reads the database
        (cosigned,) = witness(directory, keys)
    assert (cosigned["checkpoint_id"], cosigned["sequence"], cosigned["root"]) == (
        first.pk, 6, first.root,
    )  # fmt: skip
    verify(directory, keys)
    trail(5)
    second = sign()
    with pytest.raises(CommandError, match=r"newest checkpoint .* is not cosigned by the witness"):
        verify(directory, keys)  # the witness has not run since
    with django_assert_num_queries(0):
        (cosigned,) = witness(directory, keys)  # linked by the file's consistency proof
    assert (cosigned["checkpoint_id"], cosigned["sequence"]) == (second.pk, second.sequence)
    assert witness(directory, keys) == []  # nothing new
    assert len(cosignature_names(directory)) == 2
    verify(directory, keys)


def test_the_witness_refuses_a_rewritten_history_and_verification_catches_it(
    trail, directory, keys, sign, tamper
):
    """The attack: after the witness cosigned row 6's tree, a superuser with the app's key
    rewrites from row 3, re-chains, re-signs every checkpoint in the database and signs a new
    one, exported to the same directory as the application would."""
    trail(6)
    sign()
    witness(directory, keys)
    trail(3)
    rewrite_from(3, tamper)
    forged = sign()
    with pytest.raises(CommandError, match="not consistent with the tree of 6 rows") as refused:
        witness(directory, keys)
    assert refused.value.returncode == 1
    assert len(cosignature_names(directory)) == 1  # the forged checkpoint stays uncosigned
    with pytest.raises(CommandError):
        verify(directory, keys)
    # In a fresh directory holding only the forged checkpoints, the app's key alone is fooled;
    # the witness's key is not, with or without its old cosignatures copied in.
    fresh = directory.parent / "fresh"
    for checkpoint in AuditCheckpoint.objects.order_by("id"):
        checkpoint_file_write(checkpoint, str(fresh))
    call_command("audit_verify", "--against", str(fresh), "--no-record", verbosity=0)
    with pytest.raises(CommandError, match=f"checkpoint \\({forged.pk}, .* is not cosigned"):
        verify(fresh, keys)
    for name in cosignature_names(directory):
        (fresh / name).write_text((directory / name).read_text())
    with pytest.raises(CommandError, match="cosignature does not match the exported checkpoint"):
        verify(fresh, keys)


def test_the_witness_refuses_a_newer_checkpoint_nothing_links(trail, directory, keys, sign):
    """A rollback: a checkpoint of an older, different tree, signed with the app's key and
    written without a consistency proof, after the witness cosigned a larger tree."""
    trail(6)
    sign()
    witness(directory, keys)
    created_at = "2030-01-01T00:00:00.000000Z"
    statement = chain.checkpoint_statement(
        sequence=4, head_hash="ab" * 32, root="cd" * 32, created_at=created_at
    )
    document = {
        "id": 999, "sequence": 4, "hash": "ab" * 32, "root": "cd" * 32, "created_at": created_at,
        "algorithm": "Ed25519", "signature": signing.sign(statement), "consistency": [],
    }  # fmt: skip
    (directory / "checkpoint-000000000004-999.json").write_text(json.dumps(document))
    with pytest.raises(CommandError, match="no consistency proof ties it"):
        witness(directory, keys)


def test_the_witness_refuses_a_checkpoint_the_apps_key_did_not_sign(trail, directory, keys, sign):
    trail(6)
    checkpoint = sign()
    (path,) = directory.glob("checkpoint-*.json")
    document = json.loads(path.read_text())
    path.chmod(0o644)
    path.write_text(json.dumps({**document, "signature": "00" * 64}))
    with pytest.raises(CommandError, match=f"checkpoint {checkpoint.pk} .* does not verify"):
        witness(directory, keys)
    assert cosignature_names(directory) == []


def test_a_forged_cosignature_is_caught(trail, directory, keys, sign):
    trail(6)
    sign()
    witness(directory, keys)
    (path,) = directory.glob("cosignature-*.json")
    cosignature = json.loads(path.read_text())
    path.chmod(0o644)
    path.write_text(json.dumps({**cosignature, "root": "00" * 32}))
    with pytest.raises(CommandError, match="witness cosignature forged"):
        verify(directory, keys)
    with pytest.raises(CommandError, match="does not verify with the witness's public key"):
        witness(directory, keys)


def test_an_anchor_of_an_older_tree_is_cosigned_through_its_proof_to_the_largest(
    trail, directory, keys, sign, django_capture_on_commit_callbacks
):
    """`audit_checkpoint --at N` (the anchor of a pruned prefix) signs a tree smaller than the
    ones cosigned: its document carries the proof that it is a prefix of the largest one."""
    trail(6)
    sign()
    trail(3)
    largest = sign()
    witness(directory, keys)  # trusts the newest (first use), skips the older one
    with django_capture_on_commit_callbacks(execute=True):
        call_command("audit_checkpoint", "--at", "4", stdout=StringIO())
    anchor = AuditCheckpoint.objects.get(sequence=4)
    (cosigned,) = witness(directory, keys)
    assert (cosigned["checkpoint_id"], cosigned["sequence"]) == (anchor.pk, 4)
    assert largest.sequence > 4
    verify(directory, keys)
