"""Evidence exports of a signed daily review: CSV and signed manifest in a ZIP, the same bytes
on every export, the manifest's hash in the trail."""

import csv
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from audit import chain, signing
from audit.models import AuditCheckpoint, AuditEvent, FindingKind
from audit.review import PARAMETER_SETTINGS
from audit.services import audit_event_record
from audit.signoff import daily_review_sign_off, review_finding_work
from config.context import Actor, acting_as
from tests.audit_trail import sealed_review
from tests.staff_login import staff_login


def unpack(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}


def checked_manifest(files: dict[str, bytes]) -> dict:
    """The manifest, after checking its signature and the hash of every file it lists."""
    key = signing.public_key_from_pem(files["public_key.pem"].decode())
    signature = files["manifest.sig"].decode().strip()
    assert signing.verifies(key, files["manifest.json"], signature)
    manifest = json.loads(files["manifest.json"])
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, name
    # The covering checkpoint's own signature verifies with the same key.
    checkpoint = manifest["checkpoint"]
    statement = chain.checkpoint_statement(
        sequence=checkpoint["tree_size"],
        head_hash=checkpoint["hash"],
        root=checkpoint["root"],
        created_at=checkpoint["created_at"],
    )
    assert signing.verifies(key, statement, checkpoint["signature"])
    return manifest


@pytest.fixture
def signed_review(day_with_findings, finance):
    """The day of `day_with_findings`, its findings worked by fiona (the role change accepted,
    sam's failed sign-ins escalated) and signed off against its checkpoint."""
    review = day_with_findings
    with acting_as(Actor(kind="user", user_id=finance.pk)):  # as the admin's request does
        for finding in review.findings.all():
            escalate = finding.kind == FindingKind.SIGN_IN_FAILURES
            review_finding_work(
                finding=finding,
                user=finance,
                decision="escalated" if escalate else "accepted",
                note="=HYPERLINK(to security)" if escalate else "new hire",
            )
        return daily_review_sign_off(review=review, user=finance)


def evidence_url(review) -> str:
    return reverse("admin:audit_dailyreview_evidence", args=[review.pk])


def test_a_signed_review_exports_the_same_signed_evidence_every_time(
    finance_client, signed_review, settings, tmp_path
):
    review = signed_review
    response = finance_client.get(evidence_url(review))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    name = f"daily-review-{review.day.isoformat()}.zip"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    files = unpack(response.content)
    assert set(files) == {
        "findings.csv", "report.pdf", "manifest.json", "manifest.sig", "public_key.pem"
    }  # fmt: skip
    manifest = checked_manifest(files)
    assert set(manifest["files"]) == {"findings.csv", "report.pdf", "public_key.pem"}
    pdf = files["report.pdf"]
    assert pdf.startswith(b"%PDF-")
    assert f"/Title (Daily review of {review.day.isoformat()}: evidence)".encode() in pdf

    assert manifest["kind"] == "daily-review"
    assert manifest["parameters"]["day"] == review.day.isoformat()
    assert manifest["parameters"]["AUDIT_REVIEW_FAILED_SIGNIN_THRESHOLD"] == 1
    assert set(manifest["parameters"]) == {"day", *PARAMETER_SETTINGS}
    assert manifest["population"]["audit_rows_reviewed"] == review.rows > 0
    assert manifest["population"]["last_sequence"] == review.last_sequence
    assert manifest["findings"] == {"total": 2, "accepted": 1, "escalated": 1}
    assert manifest["signed_off"]["by_name"] == "fiona"
    assert manifest["signed_off"]["audit_row_id"] == review.sign_off_row_id
    checkpoint = AuditCheckpoint.objects.get(pk=review.checkpoint_id)
    assert manifest["checkpoint"]["tree_size"] == checkpoint.sequence >= review.last_sequence
    assert manifest["checkpoint"]["root"] == checkpoint.root != ""

    findings = {
        row["kind"]: row for row in csv.DictReader(io.StringIO(files["findings.csv"].decode()))
    }
    escalated = findings[FindingKind.SIGN_IN_FAILURES]
    assert (escalated["status"], escalated["worked_by_name"]) == ("escalated", "fiona")
    assert escalated["note"] == "'=HYPERLINK(to security)"  # a spreadsheet never runs it
    assert findings[FindingKind.ROLE_CHANGES]["note"] == "new hire"
    assert escalated["audit_sequences"]

    # Changed thresholds later do not rewrite the evidence: the same bytes, every export.
    settings.AUDIT_REVIEW_FAILED_SIGNIN_THRESHOLD = 50
    again = finance_client.get(evidence_url(review))
    assert again.content == response.content
    out = tmp_path / "evidence.zip"
    call_command("audit_review_export", "--day", review.day.isoformat(), "--out", str(out))
    assert out.read_bytes() == response.content

    digest = hashlib.sha256(files["manifest.json"]).hexdigest()
    assert response["X-Manifest-SHA256"] == digest
    exports = AuditEvent.objects.filter(action="audit.export.created").order_by("id")
    assert [row.meta["sha256"] for row in exports] == [digest] * 3
    assert [row.actor_name for row in exports] == ["fiona", "fiona", "system"]
    assert exports[0].meta["view"] == "review-evidence"
    assert exports[0].target_id == str(review.pk)


def test_an_unsigned_review_has_no_evidence_yet(finance_client, postgres, tmp_path):
    audit_event_record(action="audit.chain.verified")
    review = sealed_review(day=datetime.now(UTC).date())
    response = finance_client.get(evidence_url(review))
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/audit-review-refused")
    assert "not signed off yet" in response.json()["detail"]
    with pytest.raises(CommandError, match="not signed off yet"):
        call_command(
            "audit_review_export", "--day", review.day.isoformat(), "--out", str(tmp_path / "x")
        )
    assert not AuditEvent.objects.filter(action="audit.export.created").exists()


def test_only_finance_downloads_evidence(signed_review, django_user_model):
    support = django_user_model.objects.create_user("suzy", is_staff=True)
    support.groups.add(Group.objects.get(name="Support"))
    client = staff_login(Client(), support)
    assert client.get(evidence_url(signed_review)).status_code == 403
    assert not AuditEvent.objects.filter(action="audit.export.created").exists()
