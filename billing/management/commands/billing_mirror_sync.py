"""Retry the dj-stripe mirror for every event not yet synced (after a Stripe outage)."""

from django.core.management.base import BaseCommand

from billing import selectors, tasks


class Command(BaseCommand):
    help = "Queue the dj-stripe mirror sync again for events whose sync is pending or failed."

    def handle(self, *args, **options):
        event_ids = selectors.mirror_backlog_ids()
        for event_id in event_ids:
            tasks.mirror_event.delay(event_id)
        self.stdout.write(f"{len(event_ids)} event(s) queued for the mirror sync.")
