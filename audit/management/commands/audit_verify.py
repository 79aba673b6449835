"""Walk the audit chain; exit 0 when intact, 1 naming the first bad sequence number."""

import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit import actions, metrics
from audit.models import AuditEvent, Outcome
from audit.services import audit_event_record
from audit.verification import chain_verify


class Command(BaseCommand):
    help = (
        "Verify every link of the audit hash chain, every checkpoint signature, and that no "
        "checkpointed tail was cut. Exit 0 when intact, 1 naming the first bad sequence."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=None, help="rows per query")
        parser.add_argument(
            "--no-record",
            action="store_true",
            help="do not append the result to the trail (e.g. on a read-only replica)",
        )

    def handle(self, *args, chunk_size=None, no_record=False, **options):
        estimate = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True)
        with tqdm(
            total=estimate.first() or 0,
            unit="row",
            file=self.stderr._out,
            disable=options["verbosity"] == 0,
        ) as bar:
            result = chain_verify(chunk_size=chunk_size, progress=bar.update)
        metrics.VERIFICATIONS.labels(outcome="success" if result.ok else "failure").inc()
        if not no_record:
            audit_event_record(
                action=actions.CHAIN_VERIFIED.name,
                outcome=Outcome.SUCCESS if result.ok else Outcome.FAILURE,
                reason=result.problem,
                meta={
                    "rows": result.rows,
                    "sequence_from": result.first_sequence,
                    "head_sequence": result.head_sequence,
                    "first_bad_sequence": result.first_bad_sequence,
                },
            )
        if not result.ok:
            raise CommandError(
                f"audit chain broken at sequence {result.first_bad_sequence}: {result.problem}",
                returncode=1,
            )
        summary = {"ok": True, "rows": result.rows, "head": result.head_sequence}
        if result.first_sequence != 1:
            # A pruned prefix: must match the records of the pruning change (docs/audit.md).
            summary["from"] = result.first_sequence
        self.stdout.write(json.dumps(summary))
