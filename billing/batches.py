"""Applying stored events in batches: one task and one transaction for many events.

The relay (billing/relay.py) claims a backlog in arrival order. `apply_batches_plan` cuts it
into batches: each customer's events stay together and in their arrival order, and customers
are packed side by side up to BILLING_APPLY_BATCH_SIZE events. `events_apply_batch` applies one
batch in one transaction:

- the customers' advisory locks (the ones event_apply takes one at a time) are taken first, in
  one statement and in sorted order, so two batches, or a batch and a single event, never wait
  for each other in a cycle;
- the inbox rows are read and locked in one statement; an event already applied (a duplicate
  task, a sweep's re-publish) is skipped, as event_apply skips it, so none is applied twice;
- each event is sent with stripe_event_applying and stripe_event_processed, in the batch's
  order, exactly as event_apply sends it; receivers that can write a batch's rows together
  (audit: one multi-row INSERT) do so through stripe_event_batch;
- the applied mark is one UPDATE for the batch, in the same transaction.

If anything in the batch fails, the whole transaction rolls back (nothing of the batch stays
applied) and the task hands each event to the one-at-a-time path (billing/tasks.py), whose
retries and dead letters are unchanged. Batching therefore changes how many events share a
commit, never which events are applied or in which order a customer's events are.
"""

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing import charges, metrics, signals
from billing.models import StripeEvent

log = structlog.get_logger(__name__)

# One event of a batch, as the relay publishes it: (event id, customer id).
BatchItem = tuple[str, str]


def apply_batches_plan(
    claimed: Sequence[BatchItem], *, batch_size: int
) -> tuple[list[list[BatchItem]], list[BatchItem]]:
    """Cut claimed events (arrival order) into batches, and the events applied one at a time.

    A customer's events go into one batch in arrival order (a run longer than `batch_size`
    continues in the next batch). Events without a customer (a dispute that names only its
    charge: event_apply resolves its customer under the lock) are applied one at a time."""
    by_customer: dict[str, list[BatchItem]] = {}
    singles: list[BatchItem] = []
    for item in claimed:
        if item[1] and batch_size > 1:
            by_customer.setdefault(item[1], []).append(item)
        else:
            singles.append(item)
    batches: list[list[BatchItem]] = []
    current: list[BatchItem] = []
    for run in by_customer.values():
        for item in run:
            current.append(item)
            if len(current) == batch_size:
                batches.append(current)
                current = []
    if current:
        batches.append(current)
    return batches, singles


def events_apply_batch(*, items: Sequence[BatchItem], wait: bool = True) -> int:
    """Apply a batch of stored events in one transaction; returns how many were applied now
    (the others were applied before, or are of the other mode). Raises whatever a receiver
    raises, after rolling the whole batch back.

    `wait=False` (the relay's tasks): a customer whose lock another transaction holds is left
    out instead of waited for, and its events are published again as a batch of their own
    that waits (`_defer_busy`). The relay cuts claims as events arrive, so a customer's burst
    often straddles two claims, two batches, two worker processes: waiting for the customer,
    the second batch would wait for the whole first one, and batches would run one after the
    other however many processes there are (bench/notes.md, *Scale-out*)."""
    from billing import services  # services import this module's callers: imported late

    started = time.perf_counter()
    outcomes: list[tuple[str, str]] = []
    refresh_dead_letters = False
    with transaction.atomic():
        # event_apply's per-customer locks, all of them: in one sorted order when waiting,
        # else those free now (never waiting, so never in a wait cycle either).
        customer_keys = [customer_id for _, customer_id in items if customer_id]
        if wait:
            services.customer_locks(customer_keys=customer_keys)
        else:
            busy = services.customer_locks_free(customer_keys=customer_keys)
            if busy:
                deferred = [item for item in items if item[1] in busy]
                items = [item for item in items if item[1] not in busy]
                transaction.on_commit(lambda: _defer_busy(deferred))
        event_ids = list(dict.fromkeys(event_id for event_id, _ in items))
        locked = StripeEvent.objects.select_for_update().filter(event_id__in=event_ids)
        rows = {row.event_id: row for row in locked.order_by("id")}
        applied: list[int] = []
        with ExitStack() as batch_scope:
            for _, scope in signals.stripe_event_batch.send(sender=StripeEvent):
                if isinstance(scope, AbstractContextManager):
                    batch_scope.enter_context(scope)
            for event_id in event_ids:
                row = rows.get(event_id)
                if row is None:  # not stored: nothing to apply (the relay publishes stored rows)
                    continue
                label = metrics.event_type_label(row.type)
                if services.event_is_done(row):
                    outcomes.append((label, "skipped"))
                    continue
                refresh_dead_letters |= row.status == StripeEvent.Status.DEAD
                if row.livemode != settings.STRIPE_LIVE_MODE:
                    services.event_mark_other_mode(row, type_label=label, was_dead=False)
                    continue
                services.event_signals_send(charges.billing_event_resolve(payload=row.payload))
                applied.append(row.pk)
                outcomes.append((label, "applied"))
        if applied:
            now = timezone.now()
            StripeEvent.objects.filter(pk__in=applied).update(
                status=StripeEvent.Status.APPLIED, attempts=F("attempts") + 1, last_error="",
                applied_at=now, updated_at=now,
            )  # fmt: skip
        if settings.BILLING_WEBHOOK_DEDUP_CACHE:
            transaction.on_commit(lambda: services.remember_event_ids(event_ids))
    _count(outcomes, seconds=time.perf_counter() - started)
    if refresh_dead_letters:
        services.dead_letter_gauge_refresh()
    return len(applied)


def _defer_busy(items: list[BatchItem]) -> None:
    """Publish the events a batch left out (their customers were busy) as a batch that waits
    for its locks. Should the broker be down, they stay stored and unapplied, and the sweep
    (`event_requeue_stale`) queues them again, as any lost task."""
    from billing import services

    metrics.apply_batch_deferred.inc(len(items))
    try:
        services.event_batch_queue(items=items, wait=True)
    except Exception as error:  # the sweep is the safety net
        log.warning("billing.batch.defer_failed", events=len(items), error=type(error).__name__)


def _count(outcomes: list[tuple[str, str]], *, seconds: float) -> None:
    applied: dict[str, int] = {}
    for label, outcome in outcomes:
        metrics.events_processed.labels(type=label, outcome=outcome).inc()
        if outcome == "applied":
            applied[label] = applied.get(label, 0) + 1
    metrics.apply_batch_events.observe(len(outcomes))
    # The batch's time, shared out: each applied event is observed at its share of it.
    total = sum(applied.values())
    for label, count in applied.items():
        for _ in range(count):
            metrics.event_processing_seconds.labels(type=label).observe(seconds / total)


def batch_args(items: Sequence[BatchItem]) -> list[list[str]]:
    """A batch as a task argument (JSON has no tuples)."""
    return [[event_id, customer_id] for event_id, customer_id in items]


def batch_items(args: Any) -> list[BatchItem]:
    return [(str(event_id), str(customer_id)) for event_id, customer_id in args]
