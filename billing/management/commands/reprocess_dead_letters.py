"""Requeue dead-lettered Stripe events (the admin action, from the command line)."""

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from billing import selectors, services
from config.context import Actor


class Command(BaseCommand):
    help = "Requeue dead-lettered events (all, or the --event ids) on behalf of a staff user."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--user", required=True, help="Username of the staff member acting.")
        parser.add_argument("--reason", required=True, help="Why (recorded in the audit trail).")
        parser.add_argument("--event", action="append", default=None, help="evt_... (repeat)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None or not user.has_perm("billing.reprocess_deadletter"):
            raise CommandError("The user must exist and hold billing.reprocess_deadletter.")
        event_ids = options["event"] or selectors.dead_letter_ids()
        for event_id in event_ids:
            try:
                services.dead_letter_reprocess(
                    event_id=event_id,
                    actor=Actor(kind="user", user_id=user.pk),
                    reason=options["reason"],
                )
            except Exception as error:
                raise CommandError(f"{event_id}: {error}") from None
        self.stdout.write(f"{len(event_ids)} dead letter(s) requeued.")
