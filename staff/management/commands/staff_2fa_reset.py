"""Reset a staff member's second factor (lost phone): devices removed, sessions ended."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config import context
from staff import services


class Command(BaseCommand):
    help = (
        "Remove a staff member's authenticator and backup codes and end all their sessions; "
        "they enrol again at their next sign-in. The reset is audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--reason", required=True, help="Why (recorded in the audit trail).")

    def handle(self, *args: object, **options: Any) -> None:
        reason = options["reason"].strip()
        if not reason:
            raise CommandError("--reason must not be empty.")
        User = get_user_model()
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise CommandError(f"No user {options['username']!r}.") from None
        with context.acting_as(context.SYSTEM):
            ended = services.second_factor_reset(user=user, reason=reason)
        self.stdout.write(
            f"Second factor of {user.username} reset; {ended} session(s) ended. "
            "They will enrol a new device at their next sign-in."
        )
