"""Export one whole, closed month of the trail with manifests, for the long-term archive."""

import hashlib
import json
from argparse import ArgumentParser
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max, Min

from audit import actions
from audit.checkpoint_files import checkpoint_document
from audit.export import csv_lines
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import Target, audit_event_record
from audit.verification import checkpoint_verifies


class Command(BaseCommand):
    help = (
        "Write DIR/audit-YYYY-MM.csv (with its SHA-256 manifest line) and "
        "DIR/audit-YYYY-MM.manifest.json for a closed month. Refuses unless a signed "
        "checkpoint covers the month's last sequence number: nothing leaves unanchored."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--month", required=True, help="YYYY-MM (UTC), a month that is over")
        parser.add_argument("--out", required=True, help="directory to write into")

    def handle(self, *args: Any, month: str, out: str, **options: Any) -> None:
        start, end = _month_bounds(month)
        if end > datetime.now(UTC):
            raise CommandError(f"{month} is not over yet: only closed months are archived")
        bounds = AuditEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end).aggregate(
            first=Min("sequence"), last=Max("sequence")
        )
        if bounds["last"] is None:
            raise CommandError(f"no audit rows in {month}")
        checkpoint = _covering_checkpoint(bounds["last"])
        directory = Path(out)
        directory.mkdir(parents=True, exist_ok=True)
        csv_path = directory / f"audit-{month}.csv"
        manifest_path = directory / f"audit-{month}.manifest.json"
        if csv_path.exists() or manifest_path.exists():
            raise CommandError(
                f"{csv_path} or its manifest exists already: archives are not overwritten"
            )

        rows = AuditEvent.objects.filter(sequence__gte=bounds["first"])
        file_digest = hashlib.sha256()
        with open(csv_path, "w", encoding="utf-8", newline="") as handle:
            for line in csv_lines(rows, up_to=bounds["last"]):
                handle.write(line)
                file_digest.update(line.encode())
        counted = dict(part.split("=", 1) for part in line.strip().split(",")[1:])
        manifest = {
            "month": month,
            "first_sequence": bounds["first"],
            "last_sequence": bounds["last"],
            "rows": int(counted["rows"]),
            "content_sha256": counted["sha256"],
            "file_sha256": file_digest.hexdigest(),
            "checkpoint": checkpoint_document(checkpoint),
        }
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        audit_event_record(
            action=actions.ARCHIVE_CREATED.name,
            target=Target("audit_archive", month, csv_path.name),
            meta={
                "month": month,
                "sequence_from": bounds["first"],
                "sequence_to": bounds["last"],
                "rows": manifest["rows"],
                "sha256": manifest["file_sha256"],
            },
        )
        self.stdout.write(json.dumps(manifest))


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError as error:
        raise CommandError(f"--month must be YYYY-MM, not {month!r}") from error
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def _covering_checkpoint(last_sequence: int) -> AuditCheckpoint:
    checkpoint = (
        AuditCheckpoint.objects.filter(sequence__gte=last_sequence).order_by("sequence").first()
    )
    if checkpoint is None:
        raise CommandError(
            f"no checkpoint covers sequence {last_sequence}: run audit_checkpoint first"
        )
    if not checkpoint_verifies(checkpoint):
        raise CommandError(f"checkpoint at sequence {checkpoint.sequence} does not verify")
    return checkpoint
