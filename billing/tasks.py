"""Celery tasks of billing: thin wrappers over services, queued with transaction.on_commit."""

# Celery's Task is generic only in its type stubs (celery-types): annotations stay unevaluated.
from __future__ import annotations

from datetime import timedelta

import structlog
from celery import Task, current_app, shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.utils import timezone

from billing import batches, metrics, rejections, services

log = structlog.get_logger(__name__)


def _countdown(retries: int) -> int:
    # Exponential backoff with full jitter, the same formula Celery's retry_backoff uses.
    return get_exponential_backoff_interval(
        factor=settings.BILLING_RETRY_BACKOFF_SECONDS,
        retries=retries,
        maximum=settings.BILLING_RETRY_BACKOFF_MAX_SECONDS,
        full_jitter=True,
    )


@shared_task(bind=True, acks_late=True, max_retries=None)
def apply_event(self: Task[..., None], event_id: str, customer_id: str = "") -> None:
    """Apply one inbox event; after BILLING_EVENT_MAX_RETRIES failed retries it is dead."""
    try:
        services.event_apply(event_id=event_id, customer_id=customer_id)
    except Exception as error:
        final = self.request.retries >= settings.BILLING_EVENT_MAX_RETRIES
        services.event_record_failure(event_id=event_id, error=error, final=final)
        if final:
            return
        raise self.retry(exc=error, countdown=_countdown(self.request.retries)) from error


@shared_task(bind=True, acks_late=True, max_retries=None)
def apply_events(self: Task[..., None], items: list[list[str]], wait: bool = False) -> None:
    """Apply a batch of inbox events in one transaction (billing/batches.py). If the batch
    fails, nothing of it stays applied and each event goes to apply_event, one at a time, with
    that task's retries and dead letters. `wait`: wait for busy customers' locks (a batch of
    events another batch left out) instead of leaving them out for a batch of their own."""
    batch = batches.batch_items(items)
    try:
        batches.events_apply_batch(items=batch, wait=wait)
    except Exception as error:
        metrics.apply_batch_fallbacks.labels(error=type(error).__name__).inc()
        log.warning("billing.batch.failed", events=len(batch), error=type(error).__name__)
        try:
            with current_app.producer_or_acquire() as producer:
                for event_id, customer_id in batch:
                    apply_event.apply_async((event_id, customer_id), producer=producer)
        except Exception as publish_error:  # broker down: this batch is retried as a whole
            raise self.retry(
                exc=publish_error, countdown=_countdown(self.request.retries)
            ) from publish_error


@shared_task(bind=True, acks_late=True, max_retries=None)
def mirror_event(self: Task[..., None], event_id: str, customer_id: str = "") -> None:
    """Mirror one event into dj-stripe's tables; retried while Stripe's API fails."""
    try:
        services.event_mirror_sync(event_id=event_id, customer_id=customer_id)
    except Exception as error:
        final = self.request.retries >= settings.BILLING_MIRROR_MAX_RETRIES
        services.event_mirror_failure(event_id=event_id, error=error, final=final)
        if final:
            return
        raise self.retry(exc=error, countdown=_countdown(self.request.retries)) from error


@shared_task(bind=True, acks_late=True, max_retries=None)
def fetch_subscription(self: Task[..., None], subscription_id: str) -> None:
    """Fetch a subscription whose same-second events the payloads cannot order; retried with
    backoff while Stripe's API fails (the best guess stands meanwhile)."""
    if not settings.BILLING_STRIPE_MIRROR_ENABLED:
        # No Stripe account behind the offline placeholder key: the best guess stands.
        metrics.subscription_fetches.labels(outcome="disabled").inc()
        return
    try:
        services.subscription_fetch(subscription_id=subscription_id)
    except Exception as error:
        final = self.request.retries >= settings.BILLING_MIRROR_MAX_RETRIES
        metrics.subscription_fetches.labels(outcome="failed" if final else "retry").inc()
        if final:
            return
        raise self.retry(exc=error, countdown=_countdown(self.request.retries)) from error


@shared_task(acks_late=True)
def purge_idempotency_keys() -> int:
    from billing import idempotency

    return idempotency.idempotency_records_purge()


@shared_task
def refresh_dead_letter_gauge() -> int:
    return services.dead_letter_gauge_refresh()


@shared_task
def requeue_stale_events() -> int:
    return services.event_requeue_stale(
        older_than_seconds=settings.BILLING_REQUEUE_STALE_AFTER_SECONDS
    )


@shared_task
def flush_rejection_counts() -> int:
    return rejections.rejection_counts_flush(now=timezone.now())


@shared_task
def purge_rejected_deliveries() -> int:
    return rejections.rejected_deliveries_purge(
        older_than=timedelta(hours=settings.BILLING_REJECTED_DELIVERY_RETENTION_HOURS),
        now=timezone.now(),
    )
