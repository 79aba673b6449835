"""The outbox relay as a long-running process: publish stored events, wait for a NOTIFY."""

import signal
import time
from argparse import ArgumentParser
from typing import Any

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection

from billing.relay import OutboxListener, outbox_relay

log = structlog.get_logger(__name__)


class Command(BaseCommand):
    # A long-running process like the worker: the release step runs `check --deploy`.
    requires_system_checks: list[str] = []
    help = (
        "Publish stored Stripe events to the Celery workers in batches (FOR UPDATE SKIP LOCKED: "
        "run one or more), woken by PostgreSQL NOTIFY; runs until SIGTERM, or once with --once."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=None, help="default BILLING_RELAY_BATCH_SIZE"
        )
        parser.add_argument(
            "--poll", type=float, default=5.0,
            help="seconds to wait for a notification before looking anyway",
        )  # fmt: skip
        parser.add_argument(
            "--linger", type=float, default=None,
            help="seconds to wait after a notification before claiming (default "
            "BILLING_RELAY_LINGER_SECONDS)",
        )  # fmt: skip
        parser.add_argument("--once", action="store_true", help="publish what waits, then exit")

    def handle(
        self,
        *args: Any,
        batch_size: int | None = None,
        poll: float = 5.0,
        linger: float | None = None,
        once: bool = False,
        **options: Any,
    ) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("The relay needs PostgreSQL (LISTEN/NOTIFY, SKIP LOCKED).")
        batch_size = batch_size or settings.BILLING_RELAY_BATCH_SIZE
        linger = settings.BILLING_RELAY_LINGER_SECONDS if linger is None else linger
        stopping: list[bool] = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        listener: OutboxListener | None = None
        while not stopping:
            try:
                # LISTEN before looking: a row committed meanwhile leaves a notification.
                listener = listener or OutboxListener()
                close_old_connections()  # a restarted PostgreSQL costs one round, not the relay
                while outbox_relay(batch_size=batch_size) == batch_size and not stopping:
                    pass  # a full batch: more may wait
                if once:
                    return
                if listener.wait(poll) and linger > 0:
                    # Let the events arriving right behind this one join its claim: under load
                    # a claim then holds several events per customer batch (billing/batches.py)
                    # instead of one task per event; at a trickle it delays applying by this.
                    time.sleep(linger)
            except Exception as error:  # a relay outlives its dependencies
                # PostgreSQL or the broker away (psycopg's, Django's, kombu's or redis' error):
                # the claim rolled back, the rows wait for the next round.
                log.warning(
                    "billing.relay.retry", error=type(error).__name__, detail=str(error)[:200]
                )
                if listener is not None:
                    listener.close()
                    listener = None
                # Drop Django's connection too, whatever state the failure left it in: after a
                # PostgreSQL restart, close_old_connections() alone kept a dead one (the relay
                # then failed every round until restarted; bench drill of 2026-12-01).
                connection.close()
                time.sleep(min(poll, 1.0))
        if listener is not None:
            listener.close()
