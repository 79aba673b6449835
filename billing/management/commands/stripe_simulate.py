"""Send realistic, signed Stripe event sequences to a running Tollgate (no Stripe, no network)."""

import time
import urllib.error
import urllib.parse
import urllib.request
from argparse import ArgumentParser
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse
from tqdm import tqdm

from billing.simulator import local, run
from billing.simulator.scenarios import SCENARIO_NAMES
from billing.simulator.sender import Sender

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
MAX_CUSTOMERS = 100


class Command(BaseCommand):
    help = (
        "Post realistic, correctly signed Stripe webhook sequences to a running Tollgate over "
        "HTTP, with a progress bar and a summary of the answers; exit 1 if any delivery was "
        "lost. Without --url/--secret it configures (once) and uses a local endpoint. "
        "Scenarios: " + ", ".join(SCENARIO_NAMES) + ", or all."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("scenario", choices=[*SCENARIO_NAMES, "all"])
        parser.add_argument("--url", default="", help="Webhook URL (with --secret).")
        parser.add_argument("--secret", default="", help="Its signing secret, whsec_...")
        parser.add_argument(
            "--base-url",
            default=DEFAULT_BASE_URL,
            help=f"Server of the local endpoint when --url is not given ({DEFAULT_BASE_URL}).",
        )
        parser.add_argument("--customers", type=int, default=1, help="Customers per scenario.")
        parser.add_argument("--seed", type=int, default=None, help="Reproducible ids.")
        parser.add_argument("--retries", type=int, default=3, help="Retries of a non-2xx.")
        parser.add_argument(
            "--wait", type=float, default=0, help="Seconds to wait for the server's /healthz."
        )
        parser.add_argument(
            "--stripe-api",
            default="",
            help="A fake Stripe API (manage.py stripe_fake_api) to hand every object to first, "
            "so dj-stripe's mirror can fetch them.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["customers"] <= MAX_CUSTOMERS:
            raise CommandError(f"--customers must be between 1 and {MAX_CUSTOMERS}.")
        if options["retries"] < 0:
            raise CommandError("--retries cannot be negative.")
        url, secret = self._target(options)
        try:
            sender = Sender(url=url, secret=secret, retries=options["retries"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        api_url = options["stripe_api"]
        if api_url and urllib.parse.urlsplit(api_url).scheme != "http":
            raise CommandError("--stripe-api must be the fake's http:// URL.")
        _wait_for(url, seconds=options["wait"])
        names = list(SCENARIO_NAMES) if options["scenario"] == "all" else [options["scenario"]]
        simulation = run.plan(names=names, customers=options["customers"], seed=options["seed"])
        if api_url:
            try:
                handed = run.register(simulation, api_url=api_url, wait=options["wait"])
            except (urllib.error.URLError, OSError) as error:
                raise CommandError(f"No fake Stripe API at {api_url}: {error}") from None
            self.stdout.write(f"Handed {handed} objects to the fake Stripe API at {api_url}")
        self.stdout.write(
            f"Sending {simulation.deliveries} deliveries ({', '.join(names)}) to {url}"
        )
        with tqdm(
            total=simulation.deliveries,
            unit="event",
            # The stream OutputWrapper wraps: django-stubs do not declare `_out`.
            file=cast(TextIO, self.stderr._out),
            disable=options["verbosity"] == 0,
        ) as bar:
            summary = run.execute(simulation, sender=sender, progress=bar.update)
        self.stdout.write(summary.table())
        if summary.lost:
            raise CommandError(f"{len(summary.lost)} deliveries were lost (see above).")
        self.stdout.write(self.style.SUCCESS("Every delivery was answered 2xx."))
        origin = _origin(url)
        self.stdout.write(
            f"See them in the admin: {origin}{reverse('admin:billing_stripeevent_changelist')} "
            f"(events), {origin}{reverse('admin:entitlements_entitlement_changelist')} "
            f"(entitlements), {origin}{reverse('admin:index')}audit/ (the audit trail)."
        )

    def _target(self, options: dict[str, Any]) -> tuple[str, str]:
        url, secret = options["url"], options["secret"]
        if url or secret:
            if not (url and secret):
                raise CommandError("--url and --secret go together.")
            if not secret.startswith("whsec_"):
                raise CommandError("--secret must be a Stripe signing secret (whsec_...).")
            return url, secret
        base = options["base_url"].rstrip("/")
        if urllib.parse.urlsplit(base).scheme not in {"http", "https"}:
            raise CommandError("--base-url must be an http(s) URL.")
        endpoint, secret = local.simulator_endpoint()
        return base + reverse("stripe-webhook", kwargs={"uuid": endpoint.djstripe_uuid}), secret


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _wait_for(url: str, *, seconds: float) -> None:
    """Poll the server's /healthz until it answers (for `make run`, which starts both)."""
    if seconds <= 0:
        return
    health = _origin(url) + reverse("healthz")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + seconds
    while True:
        try:
            with opener.open(health, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() >= deadline:
                raise CommandError(f"No answer from {health} within {seconds:g}s.") from None
            time.sleep(0.5)
