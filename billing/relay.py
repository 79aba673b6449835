"""The outbox relay: stored events go from the inbox to the Celery workers, off the request path.

The webhook request only verifies and inserts (billing/services.py:event_receive); the insert
fires a trigger that NOTIFYs `OUTBOX_CHANNEL` at commit (billing/migrations/0004). A relay
(`manage.py billing_relay`) LISTENs there, claims a batch of rows not yet queued with
`FOR UPDATE SKIP LOCKED`, publishes their tasks and marks them queued in the same transaction.

- Several relays are safe: a row locked by one is skipped by the others, and once its claim
  commits the row no longer matches.
- A relay that dies mid-batch rolls its claim back: the rows stay unqueued and the next relay
  publishes them again. Some of their tasks may then be published twice; applying is
  idempotent (event_apply locks the customer, then the row, and skips an applied event), so an
  event is never applied twice, and none is lost.
- With no relay running at all, beat's `requeue_stale_events` sweep still queues what waits.

Where there is no LISTEN (SQLite) or no worker (eager Celery: `make run`, the tests), the same
relay step runs in the web process right after the insert commits (BILLING_RELAY_INLINE).

Events are published in batches (billing/batches.py): each customer's claimed events stay
together, in arrival order, in one `apply_events` task that applies its batch in one
transaction; events without a customer (a dispute naming only its charge) go one at a time to
`apply_event`. BILLING_APPLY_BATCH_SIZE=1 publishes one task per event.
"""

import structlog
from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing import batches, metrics
from billing.models import StripeEvent

log = structlog.get_logger(__name__)

OUTBOX_CHANNEL = "billing_outbox"


def outbox_relay(*, batch_size: int) -> int:
    """Publish the tasks of up to `batch_size` stored, unqueued events (oldest first) and mark
    them queued; returns how many. A publish that fails (broker down) rolls the whole claim
    back and raises: the rows wait for the next attempt."""
    from billing import services  # services import this module's callers: imported late

    with transaction.atomic():
        claimed = list(
            StripeEvent.objects.select_for_update(skip_locked=True)
            .filter(queued_at__isnull=True)
            .order_by("id")
            .values_list("id", "event_id", "customer_id", "mirror_status")[:batch_size]
        )
        if not claimed:
            return 0
        groups, singles = batches.apply_batches_plan(
            [(event_id, customer_id) for _, event_id, customer_id, _ in claimed],
            batch_size=settings.BILLING_APPLY_BATCH_SIZE,
        )
        # One producer (one broker connection) for the claim, not one taken from the pool per
        # task. A customer's events are in one batch, in arrival order.
        with current_app.producer_or_acquire() as producer:
            for group in groups:
                services.event_batch_queue(items=group, producer=producer)
            for event_id, customer_id in singles:
                services.event_queue(
                    event_id=event_id, customer_id=customer_id, mirror="", producer=producer
                )
            for _, event_id, customer_id, mirror in claimed:
                if mirror == StripeEvent.MirrorStatus.PENDING:
                    services.event_queue(
                        event_id=event_id, customer_id=customer_id, mirror=mirror,
                        apply=False, producer=producer,
                    )  # fmt: skip
        StripeEvent.objects.filter(pk__in=[row[0] for row in claimed]).update(
            queued_at=timezone.now()
        )
    metrics.relay_published.inc(len(claimed))
    return len(claimed)


def outbox_relay_inline() -> None:
    """The relay step in the web process, after the insert committed (BILLING_RELAY_INLINE):
    with eager Celery the events are applied here and now."""
    while outbox_relay(batch_size=settings.BILLING_RELAY_BATCH_SIZE) == (
        settings.BILLING_RELAY_BATCH_SIZE
    ):
        pass


class OutboxListener:
    """A dedicated autocommit connection LISTENing on OUTBOX_CHANNEL (PostgreSQL only).

    LISTEN is a session's state: it needs a connection of its own, held for the relay's life,
    and made directly to PostgreSQL (a PgBouncer in transaction mode would drop it)."""

    def __init__(self) -> None:
        params = connection.get_connection_params()
        self.conn = connection.get_new_connection(params)
        self.conn.autocommit = True
        self.conn.execute(f"LISTEN {OUTBOX_CHANNEL}")

    def wait(self, timeout: float) -> bool:
        """Block until a notification arrives or `timeout` passes; True when notified. The
        notifications already waiting are consumed too: one wake-up stands for all of them."""
        notified = any(True for _ in self.conn.notifies(timeout=timeout, stop_after=1))
        if notified:
            for _ in self.conn.notifies(timeout=0):
                pass
        return notified

    def close(self) -> None:
        self.conn.close()
