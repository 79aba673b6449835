"""Export (a filtered range of) the audit trail as CSV with a SHA-256 manifest line."""

import contextlib
import sys
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from audit import actions
from audit.export import csv_lines
from audit.models import AuditEvent
from audit.selectors import head_sequence
from audit.services import Target, audit_event_record


class Command(BaseCommand):
    help = "Write the audit trail (optionally filtered) as CSV ending with a SHA-256 manifest line."

    def add_arguments(self, parser):
        parser.add_argument("--out", help="file to write (default: standard output)")
        parser.add_argument("--action", help="only this action, e.g. billing.payment.failed")
        parser.add_argument("--since", help="occurred_at >= this ISO date/time (UTC)")
        parser.add_argument("--until", help="occurred_at < this ISO date/time (UTC)")

    def handle(self, *args, out=None, action=None, since=None, until=None, **options):
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


def _parse(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"not an ISO date/time: {value!r}") from error
    # A date or time without an offset is UTC, as the help says, whatever the server's zone.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
