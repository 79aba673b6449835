"""Delete Idempotency-Key records older than the retention (at least 24 hours)."""

from typing import Any

from django.core.management.base import BaseCommand

from billing.idempotency import idempotency_records_purge


class Command(BaseCommand):
    help = "Delete Idempotency-Key records older than BILLING_IDEMPOTENCY_RETENTION_HOURS."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"{idempotency_records_purge()} record(s) purged.")
