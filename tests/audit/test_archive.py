"""audit_archive exports whole closed months with manifests, only under a signed checkpoint."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from audit import chain
from audit.models import AuditEvent, ChainHead
from audit.services import audit_checkpoint_create, audit_event_record
from config.context import Actor

MARCH = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def march_and_april(db):
    """A valid chain of 3 rows in March and 2 in April 2026 (inserted with their real hashes:
    the service stamps rows with the database's clock, and those months are past)."""
    prev_hash = chain.GENESIS_HASH
    for sequence, when in enumerate(
        [MARCH + timedelta(days=d) for d in (0, 10, 30)] + [datetime(2026, 4, 2, tzinfo=UTC)] * 2,
        start=1,
    ):
        fields = {
            "action": "billing.invoice.paid", "actor_id": "", "actor_name": "stripe",
            "actor_role": "SYSTEM", "actor_type": "stripe", "ip": "", "meta": {"amount": sequence},
            "occurred_at": when, "outcome": "success", "reason": "", "request_id": "",
            "sequence": sequence, "stripe_event_id": f"evt_{sequence}", "target_id": "",
            "target_repr": "", "target_type": "invoice", "user_agent": "",
        }  # fmt: skip
        row_hash = chain.link_hash(prev_hash, tuple(fields[name] for name in chain.CONTENT_FIELDS))
        AuditEvent(**fields, prev_hash=prev_hash, hash=row_hash).save()
        prev_hash = row_hash
    ChainHead.objects.create(pk=1, sequence=5, hash=prev_hash)


def test_archive_refuses_a_month_no_checkpoint_covers(march_and_april, tmp_path):
    with pytest.raises(CommandError, match="no checkpoint covers sequence 3"):
        call_command("audit_archive", "--month", "2026-03", "--out", str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_archive_refuses_the_current_month(march_and_april, tmp_path):
    audit_checkpoint_create()
    this_month = datetime.now(UTC).strftime("%Y-%m")
    with pytest.raises(CommandError, match="not over yet"):
        call_command("audit_archive", "--month", this_month, "--out", str(tmp_path))


def test_archive_writes_the_month_with_manifests(march_and_april, tmp_path, capsys):
    audit_event_record(action="billing.payment.failed", actor=Actor(kind="stripe"))  # today
    checkpoint = audit_checkpoint_create()
    call_command("audit_archive", "--month", "2026-03", "--out", str(tmp_path))
    manifest = json.loads((tmp_path / "audit-2026-03.manifest.json").read_text())
    data = (tmp_path / "audit-2026-03.csv").read_bytes()
    lines = data.decode().splitlines()
    assert [line.split(",")[0] for line in lines[1:-1]] == ["1", "2", "3"]
    content = data[: data.rindex(b"#manifest")]
    assert lines[-1] == f"#manifest,rows=3,sha256={hashlib.sha256(content).hexdigest()}"
    assert manifest["rows"] == 3
    assert (manifest["first_sequence"], manifest["last_sequence"]) == (1, 3)
    assert manifest["file_sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["checkpoint"]["sequence"] == checkpoint.sequence
    assert manifest["checkpoint"]["signature"] == checkpoint.signature
    recorded = AuditEvent.objects.get(action="audit.archive.created")
    assert recorded.meta["sha256"] == manifest["file_sha256"]
    assert json.loads(capsys.readouterr().out) == manifest
    with pytest.raises(CommandError, match="not overwritten"):
        call_command("audit_archive", "--month", "2026-03", "--out", str(tmp_path))


def test_archive_rejects_a_bad_month(db, tmp_path):
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("audit_archive", "--month", "March", "--out", str(tmp_path))
