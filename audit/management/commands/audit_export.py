"""Export (a filtered range of) the audit trail as CSV with a SHA-256 manifest line."""

import contextlib
import json
import sys
from argparse import ArgumentParser
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import actions, chain
from audit.evidence import EvidenceError, EvidenceQuery, evidence_pack_write
from audit.export import csv_lines
from audit.models import AuditEvent
from audit.selectors import head_sequence
from audit.services import Target, audit_event_record


class Command(BaseCommand):
    help = (
        "Write the audit trail (optionally filtered) as CSV ending with a SHA-256 manifest line, "
        "or, with --evidence DIR, an evidence pack an auditor verifies offline."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--out", help="file to write (default: standard output)")
        parser.add_argument("--action", help="only this action, e.g. billing.payment.failed")
        parser.add_argument("--since", help="occurred_at >= this ISO date/time (UTC)")
        parser.add_argument("--until", help="occurred_at < this ISO date/time (UTC)")
        parser.add_argument(
            "--evidence",
            metavar="DIR",
            help="write an evidence pack (rows as hashed, signed checkpoints, proofs, verifier)",
        )
        parser.add_argument(
            "--to-sequence",
            type=int,
            help="evidence: rows up to this sequence (default: the newest signed checkpoint)",
        )

    def handle(
        self,
        *args: Any,
        out: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        **options: Any,
    ) -> None:
        if options.get("evidence"):
            self._evidence(action, since, until, options["evidence"], options.get("to_sequence"))
            return
        queryset = AuditEvent.objects.all()
        if action:
            if action not in actions.ACTIONS:
                raise CommandError(f"unknown action {action!r}")
            queryset = queryset.filter(action=action)
        if since:
            queryset = queryset.filter(occurred_at__gte=_parse(since))
        if until:
            queryset = queryset.filter(occurred_at__lt=_parse(until))
        up_to = head_sequence()
        audit_event_record(
            action=actions.EXPORT_CREATED.name,
            target=Target("audit_trail", "", f"action={action} since={since} until={until}"),
            meta={"view": "command", "sequence_to": up_to},
        )
        with contextlib.ExitStack() as stack:
            handle = (
                stack.enter_context(open(out, "w", encoding="utf-8", newline=""))
                if out
                else sys.stdout
            )
            handle.writelines(csv_lines(queryset, up_to=up_to))

    def _evidence(
        self,
        action: str | None,
        since: str | None,
        until: str | None,
        directory: str,
        to_sequence: int | None,
    ) -> None:
        if action and action not in actions.ACTIONS:
            raise CommandError(f"unknown action {action!r}")
        query = EvidenceQuery(
            action=action or "",
            since=chain.format_time(_parse(since)) if since else "",
            until=chain.format_time(_parse(until)) if until else "",
            to_sequence=to_sequence,
        )
        try:
            manifest = evidence_pack_write(query=query, directory=directory)
        except EvidenceError as error:
            raise CommandError(str(error)) from error
        # The manifest's hash in the trail: a pack rewritten later no longer matches it.
        audit_event_record(
            action=actions.EXPORT_CREATED.name,
            target=Target("audit_trail", "", f"evidence {query}"[:255]),
            meta={
                "view": "evidence",
                "sequence_to": manifest["to_sequence"],
                "rows": manifest["population"],
                "sha256": manifest["sha256"],
            },
        )
        self.stdout.write(json.dumps({"manifest_sha256": manifest["sha256"], **manifest}))


def _parse(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"not an ISO date/time: {value!r}") from error
    # A date or time without an offset is UTC, as the help says, whatever the server's zone.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
