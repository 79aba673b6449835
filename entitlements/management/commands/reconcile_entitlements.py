"""Recompute Stripe-granted entitlements from stored subscription state; report or fix drift."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from config.context import Actor, acting_as
from entitlements import metrics, mirror_drift, stripe_sync, subscriptions
from entitlements.models import SubscriptionState

RECONCILER = Actor(kind="system")


class Command(BaseCommand):
    help = (
        "Compare each subscription's live Stripe entitlements with what its stored state "
        "(merged from every applied event) wants; --fix repairs the drift (audited)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--fix", action="store_true", help="repair the drift found")
        parser.add_argument(
            "--customer", action="append", default=[], help="Stripe customer id (repeatable)"
        )
        parser.add_argument(
            "--replay-events",
            action="store_true",
            help="first re-merge billing's stored, applied events into the subscription state",
        )
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        parser.add_argument(
            "--mirror",
            action="store_true",
            help="instead, report where dj-stripe's mirrored subscriptions (status, plan, "
            "period end) and our stored state disagree (report only)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["mirror"]:
            return self._mirror(options)
        if options["replay_events"]:
            with acting_as(RECONCILER):
                replayed = stripe_sync.state_replay(customer_ids=options["customer"] or None)
            self.stdout.write(f"Replayed {replayed} stored event(s) into subscription state.")
        states = SubscriptionState.objects.order_by("stripe_subscription_id")
        if options["customer"]:
            states = states.filter(stripe_customer_id__in=options["customer"])
        drifted = 0
        progress = tqdm(
            states.iterator(chunk_size=500),
            total=states.count(),
            unit="subscription",
            disable=options["no_progress"],
            file=self.stderr,
        )
        with acting_as(RECONCILER):
            for state in progress:
                drift = subscriptions.subscription_drift(state=state)
                if not drift:
                    continue
                drifted += 1
                for line in drift:
                    self.stdout.write(f"{state.stripe_subscription_id}: {line}")
                metrics.DRIFT.labels(fixed=str(options["fix"]).lower()).inc(len(drift))
                if options["fix"]:
                    with transaction.atomic():
                        state = SubscriptionState.objects.select_for_update().get(pk=state.pk)
                        subscriptions.subscription_sync(
                            state=state, actor=RECONCILER, reason="reconciliation",
                            source_event_id=None,
                        )  # fmt: skip
        verb = "fixed" if options["fix"] else "found"
        self.stdout.write(f"{drifted} subscription(s) with drift {verb}.")

    def _mirror(self, options: dict[str, Any]) -> None:
        if options["fix"] or options["replay_events"]:
            raise CommandError(
                "--mirror only reports: refresh the mirror with billing_mirror_sync, or re-merge "
                "our events with --replay-events (without --mirror)."
            )
        disagreeing = 0
        for subscription_id, drift in mirror_drift.mirror_disagreements(
            customer_ids=options["customer"] or None
        ):
            disagreeing += 1
            for line in drift:
                self.stdout.write(f"{subscription_id}: {line}")
        self.stdout.write(f"{disagreeing} subscription(s) disagree with dj-stripe's mirror.")
