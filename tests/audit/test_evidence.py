"""Evidence packs: re-hashable rows, signed checkpoints and proofs, checked offline by the
verifier shipped in the pack (run here in a subprocess, without Django)."""

import hashlib
import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from audit.services import audit_checkpoint_create
from tests.audit_trail import audit_seal


@pytest.fixture
def signed_trail(trail):
    """Rows 1-5, a checkpoint, rows 6-9 (two failed payments), a second checkpoint."""
    trail(5)
    audit_checkpoint_create()
    trail(2)
    trail(2, action="billing.payment.failed", outcome="failure")
    return audit_checkpoint_create()


def export(directory, *options) -> dict:
    call_command("audit_export", "--evidence", str(directory), *options)
    return json.loads((directory / "manifest.json").read_text())


def run_verifier(pack) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-I", str(pack / "verify_evidence.py"), str(pack)],
        capture_output=True, text=True, timeout=60, cwd=pack,
    )  # fmt: skip


def test_the_shipped_verifier_checks_a_pack_offline(signed_trail, tmp_path, capsys):
    pack = tmp_path / "pack"
    manifest = export(pack)
    printed = json.loads(capsys.readouterr().out)
    result = run_verifier(pack)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "OK 9 rows verified against the signed checkpoints"
    assert manifest["population"] == 9 and manifest["tree_size"] == 9
    # Rows exactly as hashed: SHA-256(prev_hash + row) is the stored hash.
    first = json.loads((pack / "rows.jsonl").read_text().splitlines()[0])
    assert hashlib.sha256((first["prev_hash"] + first["row"]).encode()).hexdigest() == first["hash"]
    assert first["hash"] == AuditEvent.objects.get(sequence=1).hash
    # The manifest's hash is in the trail.
    recorded = AuditEvent.objects.get(action="audit.export.created")
    digest = hashlib.sha256((pack / "manifest.json").read_bytes()).hexdigest()
    assert recorded.meta["sha256"] == printed["manifest_sha256"] == digest


def test_a_filtered_pack_states_its_query_and_population(signed_trail, tmp_path):
    pack = tmp_path / "failed"
    export(pack, "--action", "billing.payment.failed")
    query = json.loads((pack / "query.json").read_text())
    assert (query["action"], query["population"], query["to_sequence"]) == (
        "billing.payment.failed", 2, 9
    )  # fmt: skip
    assert run_verifier(pack).returncode == 0


def test_re_exporting_gives_the_same_bytes(signed_trail, tmp_path):
    export(tmp_path / "one")
    audit_seal()  # the first export's own audit row is sealed: later than the pack's bound
    export(tmp_path / "two")
    one = {path.name: path.read_bytes() for path in (tmp_path / "one").iterdir()}
    two = {path.name: path.read_bytes() for path in (tmp_path / "two").iterdir()}
    assert one == two


@pytest.mark.parametrize("fix_manifest", [False, True])
def test_an_edited_row_fails_the_verifier(signed_trail, tmp_path, fix_manifest):
    pack = tmp_path / "pack"
    export(pack)
    rows = (pack / "rows.jsonl").read_text().replace('"reason\\":\\"\\"', '"reason\\":\\"x\\"', 1)
    (pack / "rows.jsonl").write_text(rows)
    if fix_manifest:  # the forger rewrites the manifest too, but cannot sign it
        manifest = json.loads((pack / "manifest.json").read_text())
        manifest["files"]["rows.jsonl"] = hashlib.sha256(rows.encode()).hexdigest()
        (pack / "manifest.json").write_text(json.dumps(manifest))
    result = run_verifier(pack)
    assert result.returncode == 1
    expected = "manifest.json: signature" if fix_manifest else "rows.jsonl: SHA-256 differs"
    assert expected in result.stdout


def test_a_key_that_is_not_ed25519_is_a_clear_failure(signed_trail, tmp_path):
    """A public_key.pem swapped for another kind of key is reported, not a traceback."""
    pack = tmp_path / "pack"
    export(pack)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = other.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (pack / "public_key.pem").write_bytes(pem)
    result = run_verifier(pack)
    assert result.returncode == 1
    assert result.stdout.strip() == "FAIL public_key.pem: not an Ed25519 public key"
    assert result.stderr == ""


def test_a_pack_needs_a_signed_checkpoint(trail, tmp_path):
    trail(2)
    with pytest.raises(CommandError, match="no signed checkpoint"):
        export(tmp_path / "pack")
