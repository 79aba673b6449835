"""Evidence of a signed daily review or a completed access review: one ZIP an auditor keeps.

  <name>/findings.csv or <name>/accounts.csv   what was reviewed and how each item was resolved,
                                               by whom and when (formula cells defused)
  <name>/report.pdf      the manifest's facts and the same items, for a person to read
  <name>/manifest.json   the parameters, the population, the sign-off (who, when, audit row) and
                         the covering checkpoint (tree size, chain hash, root, signature), with
                         the SHA-256 of each file; manifest.sig is its Ed25519 signature
  <name>/public_key.pem  the key that signed the manifest and the checkpoint

Same approach as audit/evidence.py's packs: canonical JSON, signed manifest, and the manifest's
SHA-256 recorded in the trail at each export (audit.export.created, meta.sha256). Nothing in it
depends on when it was exported: a review that is closed no longer changes, and the ZIP's
timestamps are fixed, so exporting again gives the same bytes.
"""

import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User

from audit import actions, chain, signing
from audit.checkpoint_files import checkpoint_document
from audit.errors import AccessReviewRefused, ReviewRefused
from audit.evidence import _json
from audit.export import csv_cell, csv_line
from audit.models import AccessReview, AuditCheckpoint, DailyReview, FindingStatus
from audit.review_pdf import review_pdf
from audit.services import Target, audit_event_record
from config.context import Actor

FORMAT = "tollgate-review-evidence/1"
# ZIP entries carry a modification time; a fixed one keeps re-exports byte-identical.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

FINDING_COLUMNS = (
    "finding_id", "kind", "summary", "audit_sequences", "actor_ids", "status", "note",
    "worked_by_id", "worked_by_name", "worked_at", "worked_audit_row_id",
)  # fmt: skip
ACCOUNT_COLUMNS = (
    "user_id", "username", "role", "groups", "last_login", "second_factor", "permissions",
    "decision", "reason", "decided_by_id", "decided_by_name", "decided_at",
    "decision_audit_row_id",
)  # fmt: skip


@dataclass(frozen=True)
class ReviewEvidence:
    filename: str
    content: bytes
    manifest_sha256: str
    population: int


def _time(value: datetime | None) -> str:
    return chain.format_time(value) if value else ""


def _csv(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    lines = [csv_line(columns), *(csv_line([csv_cell(value) for value in row]) for row in rows)]
    return "".join(lines).encode()


def _zip(folder: str, files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the exporting machine
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name], compresslevel=9)
    return buffer.getvalue()


def _pack(
    folder: str,
    title: str,
    table_name: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    manifest: dict[str, Any],
    population: int,
) -> ReviewEvidence:
    files = {
        table_name: _csv(columns, rows),
        # The same facts and items for a person to read; the CSV is the one to process.
        "report.pdf": review_pdf(title=title, manifest=manifest, columns=columns, rows=rows),
        "public_key.pem": signing.public_key_pem().encode(),
    }
    manifest = {
        **manifest,
        "files": {name: hashlib.sha256(content).hexdigest() for name, content in files.items()},
        "format": FORMAT,
    }
    manifest_bytes = (_json(manifest) + "\n").encode()
    files["manifest.json"] = manifest_bytes
    files["manifest.sig"] = (signing.sign(manifest_bytes) + "\n").encode()
    return ReviewEvidence(
        filename=f"{folder}.zip",
        content=_zip(folder, files),
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        population=population,
    )


def _checkpoint(checkpoint_id: int | None) -> dict[str, Any]:
    assert checkpoint_id is not None  # set with the sign-off or completion checked by callers
    checkpoint = AuditCheckpoint.objects.get(pk=checkpoint_id)
    return {**checkpoint_document(checkpoint), "tree_size": checkpoint.sequence}


def daily_review_evidence(*, review: DailyReview) -> ReviewEvidence:
    """The evidence of a signed-off daily review (refused before the sign-off)."""
    if review.signed_off_at is None:
        raise ReviewRefused(f"The {review} is not signed off yet: its evidence comes after.")
    findings = list(review.findings.order_by("id"))
    rows = [
        (
            f.pk, f.kind, f.summary, " ".join(map(str, f.sequences)), " ".join(f.actor_ids),
            f.status, f.note, f.worked_by_id, f.worked_by_name, _time(f.worked_at),
            f.worked_row_id or "",
        )
        for f in findings
    ]  # fmt: skip
    manifest: dict[str, Any] = {
        "kind": "daily-review",
        "review_id": review.pk,
        "parameters": {"day": review.day.isoformat(), **review.parameters},
        "population": {
            "audit_rows_reviewed": review.rows,
            "first_sequence": review.first_sequence,
            "last_sequence": review.last_sequence,
        },
        "chain_verified": review.chain_ok,
        "reviewed_at": _time(review.created_at),
        "findings": {
            "total": len(findings),
            **{
                status: sum(f.status == status for f in findings)
                for status in (FindingStatus.ACCEPTED, FindingStatus.ESCALATED)
            },
        },
        "signed_off": {
            "by_id": review.signed_off_by_id,
            "by_name": review.signed_off_by_name,
            "at": _time(review.signed_off_at),
            "audit_row_id": review.sign_off_row_id,
        },
        "checkpoint": _checkpoint(review.checkpoint_id),
    }
    folder = f"daily-review-{review.day.isoformat()}"
    title = f"Daily review of {review.day.isoformat()}: evidence"
    return _pack(folder, title, "findings.csv", FINDING_COLUMNS, rows, manifest, review.rows)


def access_review_evidence(*, review: AccessReview) -> ReviewEvidence:
    """The evidence of a completed access review (refused before completion)."""
    if review.completed_at is None:
        raise AccessReviewRefused(f"The {review} is not completed yet: its evidence comes after.")
    decisions = list(review.decisions.order_by("username", "pk"))
    rows = [
        (
            d.user_id, d.username, d.role, " ".join(d.groups), _time(d.last_login),
            d.second_factor, " ".join(d.permissions), d.decision, d.reason,
            d.decided_by_id, d.decided_by_name, _time(d.decided_at), d.decision_row_id or "",
        )
        for d in decisions
    ]  # fmt: skip
    manifest: dict[str, Any] = {
        "kind": "access-review",
        "review_id": review.pk,
        "parameters": {
            "interval_days": review.interval_days,
            "accounts": "active staff and superuser accounts when the review started",
        },
        "population": {"accounts": len(decisions)},
        "started": {
            "by_id": review.started_by_id,
            "by_name": review.started_by_name,
            "at": _time(review.started_at),
        },
        "decisions": {
            outcome: sum(d.decision == outcome for d in decisions) for outcome in ("keep", "remove")
        },
        "completed": {
            "by_id": review.completed_by_id,
            "by_name": review.completed_by_name,
            "at": _time(review.completed_at),
            "audit_row_id": review.completion_row_id,
        },
        "checkpoint": _checkpoint(review.checkpoint_id),
    }
    folder = f"access-review-{review.started_at.date().isoformat()}-{review.pk}"
    title = f"Staff access review {review.pk} of {review.started_at.date().isoformat()}: evidence"
    return _pack(folder, title, "accounts.csv", ACCOUNT_COLUMNS, rows, manifest, len(decisions))


def review_evidence_export(
    *, review: DailyReview | AccessReview, user: User | None = None
) -> ReviewEvidence:
    """Build the evidence and record its manifest's SHA-256 in the trail."""
    if isinstance(review, AccessReview):
        evidence = access_review_evidence(review=review)
        target, view = (
            Target("access_review", str(review.pk), str(review)),
            "access-review-evidence",
        )
    else:
        evidence = daily_review_evidence(review=review)
        target, view = Target("daily_review", str(review.pk), str(review)), "review-evidence"
    audit_event_record(
        action=actions.EXPORT_CREATED.name,
        actor=Actor(kind="user", user_id=user.pk) if user is not None else None,
        actor_user=user,
        target=target,
        meta={
            "view": view,
            "review_id": review.pk,
            "rows": evidence.population,
            "sha256": evidence.manifest_sha256,
        },
    )
    return evidence
