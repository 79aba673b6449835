"""Serve the fake Stripe API on 127.0.0.1 for the offline demo (`make run` starts it)."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.simulator.fake_api import FakeStripe

DEFAULT_PORT = 12111


class Command(BaseCommand):
    help = (
        "Serve a fake Stripe API on 127.0.0.1 (never another interface): it answers for the "
        "objects of the events stripe_simulate --stripe-api hands it, and Stripe's 404 for any "
        "other id. Point STRIPE_API_HOST at it to turn dj-stripe's mirror on offline."
    )
    # It touches neither the database nor the settings' policies: the bench starts it with
    # DEBUG off and the second factor relaxed, which the system checks would refuse.
    requires_system_checks = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"({DEFAULT_PORT})")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["port"] <= 65535:
            raise CommandError("--port must be between 1 and 65535.")
        fake = FakeStripe(port=options["port"])
        try:
            self.stdout.write(f"Fake Stripe API on {fake.url} (offline, 127.0.0.1 only)")
            self.stdout.flush()
            fake.serve_forever()
        except OSError as error:
            raise CommandError(f"Cannot serve on {fake.url}: {error}") from None
        except KeyboardInterrupt:
            pass
