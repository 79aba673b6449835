"""Retry the dj-stripe mirror for every event not yet synced (after a Stripe outage)."""

from typing import Any

from django.core.management.base import BaseCommand

from billing import selectors, tasks


class Command(BaseCommand):
    help = "Queue the dj-stripe mirror sync again for events whose sync is pending or failed."

    def handle(self, *args: Any, **options: Any) -> None:
        backlog = selectors.mirror_backlog()
        for event_id, customer_id in backlog:
            tasks.mirror_event.delay(event_id, customer_id)
        self.stdout.write(f"{len(backlog)} event(s) queued for the mirror sync.")
