"""Create or update the local Stripe webhook endpoint and its active signing secrets."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from billing import services

MAX_TOLERANCE = 3600


class Command(BaseCommand):
    help = (
        "Create or update a local dj-stripe WebhookEndpoint (no Stripe API call) and replace "
        "its active secrets with the ones given: pass old and new while rotating, later only "
        "the new one. Prints the endpoint's URL path as the last line. Never prints secrets."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--secret", action="append", required=True, help="whsec_... (repeat to rotate)"
        )
        parser.add_argument("--tolerance", type=int, default=300, help="Seconds (default 300).")
        parser.add_argument("--url", default="", help="Public URL Stripe posts to (optional).")
        parser.add_argument("--uuid", default=None, help="Update this endpoint instead of new.")

    def handle(self, *args: Any, **options: Any) -> None:
        secrets = options["secret"]
        if any(not s.startswith("whsec_") or len(s) < 10 for s in secrets):
            raise CommandError("Each --secret must be a Stripe signing secret (whsec_...).")
        if not 1 <= options["tolerance"] <= MAX_TOLERANCE:
            raise CommandError(f"--tolerance must be between 1 and {MAX_TOLERANCE} seconds.")
        try:
            endpoint = services.webhook_endpoint_configure(
                secrets=secrets,
                tolerance=options["tolerance"],
                url=options["url"],
                uuid=options["uuid"],
            )
        except Exception as error:  # a malformed --uuid, a database error
            reason = type(error).__name__
            raise CommandError(f"Could not configure the endpoint: {reason}") from None
        self.stdout.write(
            f"Webhook endpoint {endpoint.id}: {len(set(secrets))} active secret(s), "
            f"tolerance {endpoint.djstripe_tolerance}s."
        )
        self.stdout.write(reverse("stripe-webhook", kwargs={"uuid": endpoint.djstripe_uuid}))
