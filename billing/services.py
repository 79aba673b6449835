"""Writes of billing: recording deliveries, the inbox, applying events, dead letters, endpoints."""

import secrets as secrets_module
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import kombu
import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from djstripe.enums import WebhookEndpointStatus
from djstripe.models import WebhookEndpoint, WebhookEventTrigger

from billing import charges, metrics, relay, signals, stripe_api, stripe_events
from billing.db import (
    advisory_xact_lock,
    advisory_xact_locks,
    advisory_xact_locks_free,
    insert_with_parent_ignoring_conflict,
)
from billing.errors import DeadLetterNotReprocessable
from billing.models import StripeEvent, WebhookSecret
from billing.selectors import dead_letter_count
from config import context
from config.client import client_ip
from config.logging import REDACTED, redact_text

log = structlog.get_logger(__name__)

# The advisory-lock namespace a customer's events serialize on (event_apply, batches, disputes).
_CUSTOMER_LOCKS = "apply"

# The headers a Stripe delivery carries, the only ones recorded: anything else a sender adds
# (Authorization, Proxy-Authorization, X-Api-Key, cookies, dj-stripe's secret override) never
# reaches the database, whatever its name. Values are masked by config.logging.redact_text and
# cut to a bounded length.
RECORDED_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "cache-control",
        "content-length",
        "content-type",
        "host",
        "stripe-signature",
        "user-agent",
        "x-request-id",
    }
)
# Kept by name only: the signature is checked while the request is served and is worth nothing
# afterwards, except to replay the stored body within the tolerance.
REDACTED_HEADERS = frozenset({"stripe-signature"})
MAX_HEADER_VALUE_LENGTH = 512
MAX_ERROR_LENGTH = 1000
LOCAL_ENDPOINT_PREFIX = "we_local_"  # endpoints made by stripe_webhook_endpoint, not by Stripe


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery attempt as it will be recorded (already sanitised)."""

    headers: dict[str, str]
    body: str
    remote_ip: str


def _text(value: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL; arbitrary senders can send it.
    return value.replace("\x00", "\ufffd")


def delivery_from_request(request: HttpRequest, *, body: bytes) -> Delivery:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        lowered = name.lower()
        if lowered not in RECORDED_HEADERS:
            continue
        if lowered in REDACTED_HEADERS:
            headers[name] = REDACTED
        else:
            headers[name] = redact_text(_text(value))[:MAX_HEADER_VALUE_LENGTH]
    # The client behind the trusted proxies, as axes and the trail see it (config/client.py).
    remote_ip = client_ip(request) or "0.0.0.0"  # noqa: S104 - a placeholder, not a bind address
    return Delivery(
        headers=headers, body=_text(body.decode("utf-8", errors="replace")), remote_ip=remote_ip
    )


def webhook_trigger_record(
    *, delivery: Delivery, endpoint_id: str | None, valid: bool, exception: str = ""
) -> WebhookEventTrigger:
    """Record one delivery attempt in dj-stripe's WebhookEventTrigger (valid or not)."""
    trigger = _trigger(delivery=delivery, endpoint_id=endpoint_id, valid=valid, exception=exception)
    trigger.save(force_insert=True)
    return trigger


def _trigger(
    *, delivery: Delivery, endpoint_id: str | None, valid: bool, exception: str = ""
) -> WebhookEventTrigger:
    return WebhookEventTrigger(
        headers=delivery.headers,
        body=delivery.body,
        remote_ip=delivery.remote_ip,
        valid=valid,
        exception=exception[:128],
        webhook_endpoint_id=endpoint_id,
    )


def _dedup_key(event_id: str) -> str:
    return f"billing:webhook:event:{event_id}"


def event_receive(
    *, event: dict[str, Any], endpoint_id: str, delivery: Delivery, event_json: str | None = None
) -> bool:
    """Store a verified event once; False for a duplicate. Nothing is published here: the
    stored row is the outbox, and the relay (billing/relay.py) queues its processing.

    `event_json`: the event already dumped to JSON (the webhook view has it from its check
    that PostgreSQL can store the event); the inbox's jsonb is parsed from it instead of
    dumping the event a second time. It must encode `event` itself.

    With BILLING_WEBHOOK_DEDUP_CACHE, Redis answers known duplicates without touching the
    database (they are counted and logged, not recorded as a trigger row), but only ids of
    applied events are put there (event_apply), and its absence (down, flushed, not applied
    yet) just falls through to the unique constraint: the database alone decides whether an
    event is new. Off by default: its round trip cost every new event about as much as the
    insert (bench/notes.md), to save an insert on rare redeliveries. A new event costs one
    INSERT statement (the delivery's trigger row and the inbox row together) and one commit;
    its trigger NOTIFYs the relay at that commit.
    """
    event_id = event["id"]
    if settings.BILLING_WEBHOOK_DEDUP_CACHE and cache.get(_dedup_key(event_id)):
        _count_duplicate(answered_by="cache")
        log.info("billing.webhook.duplicate", event_id=event_id, answered_by="cache")
        return False
    billing_event = stripe_events.parse(event)
    customer_id = billing_event.customer_key
    mirror = (
        StripeEvent.MirrorStatus.PENDING
        if settings.BILLING_STRIPE_MIRROR_ENABLED
        else StripeEvent.MirrorStatus.DISABLED
    )
    row = StripeEvent(
        event_id=event_id,
        type=event["type"][:255],
        created=event["created"],
        livemode=event["livemode"],
        account=billing_event.account,
        customer_id=customer_id,
        payload=event,
        mirror_status=mirror,
    )
    trigger = _trigger(delivery=delivery, endpoint_id=endpoint_id, valid=True)
    json_texts = None if event_json is None else {"payload": event_json}
    new_pk = insert_with_parent_ignoring_conflict(
        trigger, row, parent_field="trigger_id", conflict_fields=["event_id"], json_texts=json_texts
    )
    inserted = new_pk is not None
    # The event id reaches Redis when the event is applied (event_apply): until then a
    # duplicate is refused by the unique constraint.
    if inserted:
        if settings.BILLING_RELAY_INLINE:
            # No relay process (SQLite, eager Celery): the relay step runs here once the insert
            # has committed (at once in autocommit). robust: the event is stored, and a failure
            # to queue it must not turn the answer into a 500; the sweep queues it later.
            transaction.on_commit(relay.outbox_relay_inline, robust=True)
        metrics.webhook_events_received.labels(type=metrics.event_type_label(row.type)).inc()
        log.info("billing.webhook.accepted", event_id=event_id, event_type=row.type)
    else:
        _count_duplicate(answered_by="database")
        log.info("billing.webhook.duplicate", event_id=event_id, answered_by="database")
    return inserted


def remember_event_ids(event_ids: list[str]) -> None:
    """Put committed event ids in the Redis fast path (django-redis ignores Redis being down:
    only the fast path is lost, the database stays the authority on duplicates)."""
    cache.set_many(
        {_dedup_key(event_id): 1 for event_id in event_ids}, settings.BILLING_WEBHOOK_DEDUP_TTL
    )


def _count_duplicate(*, answered_by: str) -> None:
    metrics.webhook_duplicates.labels(answered_by=answered_by).inc()
    metrics.webhook_replay_block.labels(reason="duplicate_event").inc()
    metrics.idempotent_hits.labels(operation="webhook").inc()


def event_queue(
    *,
    event_id: str,
    customer_id: str,
    mirror: str,
    apply: bool = True,
    producer: kombu.Producer | None = None,
) -> None:
    """Publish an event's tasks: apply it, and mirror it when its mirror sync is pending.
    `producer`: a Celery producer held by the caller across many publishes (the relay)."""
    from billing import tasks  # tasks import services: imported late to avoid the cycle

    args = (event_id, customer_id)
    if apply:
        tasks.apply_event.apply_async(args, producer=producer)
    if mirror == StripeEvent.MirrorStatus.PENDING:
        tasks.mirror_event.apply_async(args, producer=producer)


def event_batch_queue(
    *, items: list[tuple[str, str]], producer: kombu.Producer | None = None, wait: bool = False
) -> None:
    """Publish one task applying a batch of events in one transaction (billing/batches.py).
    `wait`: the task waits for its customers' locks instead of deferring the busy ones."""
    from billing import batches, tasks

    args = (batches.batch_args(items),)
    tasks.apply_events.apply_async(args, {"wait": True} if wait else {}, producer=producer)


def event_requeue_stale(*, older_than_seconds: int) -> int:
    """Queue again the events not applied (or not mirrored) for a while: their task was lost
    (broker down at commit time, a worker killed past its visibility timeout). Applying is
    idempotent, so queueing an event twice costs an attempt, never a double application."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = StripeEvent.objects.filter(updated_at__lt=cutoff)
    pending = [StripeEvent.Status.RECEIVED, StripeEvent.Status.FAILED]
    queued = []
    for event_id, customer_id in stale.filter(status__in=pending).values_list(
        "event_id", "customer_id"
    ):
        event_queue(event_id=event_id, customer_id=customer_id, mirror="")
        queued.append(event_id)
    # Published now: a relay (none was running, say) need not publish them again.
    StripeEvent.objects.filter(event_id__in=queued, queued_at__isnull=True).update(
        queued_at=timezone.now()
    )
    if settings.BILLING_STRIPE_MIRROR_ENABLED:
        unmirrored = stale.filter(mirror_status=StripeEvent.MirrorStatus.PENDING)
        for event_id, customer_id in unmirrored.values_list("event_id", "customer_id"):
            event_queue(
                event_id=event_id, customer_id=customer_id,
                mirror=StripeEvent.MirrorStatus.PENDING, apply=False,
            )  # fmt: skip
    return len(queued)


def event_apply(*, event_id: str, customer_id: str) -> bool:
    """Send the event's BillingEvent with stripe_event_applying and stripe_event_processed,
    once; False if it was applied already.

    Runs in one transaction under the customer's advisory lock, so two events of one customer
    never interleave and the receivers' writes commit together with the `applied` mark. A
    dispute, which names only its charge, is serialized on the charge's customer as far as
    billing knows the charge (billing/charges.py), else on its own id.
    """
    started = time.perf_counter()
    lock_key = customer_id or _dispute_customer_key(event_id)
    with transaction.atomic():
        customer_lock(customer_key=lock_key or event_id)
        row = StripeEvent.objects.select_for_update().get(event_id=event_id)
        type_label = metrics.event_type_label(row.type)
        if settings.BILLING_WEBHOOK_DEDUP_CACHE:
            # Applied (now or before): from then on Redis answers its duplicates.
            transaction.on_commit(lambda: remember_event_ids([event_id]))
        if event_is_done(row):
            metrics.events_processed.labels(type=type_label, outcome="skipped").inc()
            return False
        was_dead = row.status == StripeEvent.Status.DEAD
        if row.livemode != settings.STRIPE_LIVE_MODE:
            return event_mark_other_mode(row, type_label=type_label, was_dead=was_dead)
        billing_event = _billing_event(row, lock_key=lock_key)
        event_signals_send(billing_event)
        row.status = StripeEvent.Status.APPLIED
        row.attempts += 1
        row.last_error = ""
        row.applied_at = timezone.now()
        row.save(update_fields=["status", "attempts", "last_error", "applied_at", "updated_at"])
    metrics.events_processed.labels(type=type_label, outcome="applied").inc()
    metrics.event_processing_seconds.labels(type=type_label).observe(time.perf_counter() - started)
    if was_dead:
        _refresh_dead_letter_gauge()
    return True


def customer_lock(*, customer_key: str) -> None:
    """Hold the lock event_apply serializes a customer's events on, until the current
    transaction ends: work on a customer's events outside event_apply (entitlements' beat retry
    of parked disputes) waits for them, and they for it."""
    advisory_xact_lock(_CUSTOMER_LOCKS, customer_key)


def customer_locks(*, customer_keys: list[str]) -> None:
    """customer_lock for several customers at once (a batch of events), in one sorted order."""
    advisory_xact_locks(_CUSTOMER_LOCKS, customer_keys)


def customer_locks_free(*, customer_keys: list[str]) -> set[str]:
    """customer_lock for those of these customers no other transaction holds, without waiting;
    returns the customers held elsewhere (their locks not taken)."""
    return advisory_xact_locks_free(_CUSTOMER_LOCKS, customer_keys)


def event_is_done(row: StripeEvent) -> bool:
    """Applied, or of the other mode: a later attempt (a duplicate task) skips it."""
    return row.status in (StripeEvent.Status.APPLIED, StripeEvent.Status.OTHER_MODE)


def event_signals_send(billing_event: stripe_events.BillingEvent) -> None:
    """Apply one event through its receivers: its own record first, then its effects (cause
    before effect in the trail). Inside the caller's transaction."""
    signals.stripe_event_applying.send(sender=StripeEvent, billing_event=billing_event)
    signals.stripe_event_processed.send(sender=StripeEvent, billing_event=billing_event)


def _dispute_customer_key(event_id: str) -> str:
    """The customer a dispute stored without one is serialized on: its charge's, read before
    taking the lock (nothing is written: the lock is not held yet)."""
    stored = StripeEvent.objects.filter(
        event_id=event_id, type=stripe_events.CHARGE_DISPUTE_CREATED
    ).values_list("payload", flat=True)
    payload = stored.first()
    if payload is None:
        return ""
    return charges.customer_resolve(stripe_events.parse(payload), record=False).customer_key


def _billing_event(row: StripeEvent, *, lock_key: str) -> stripe_events.BillingEvent:
    billing_event = charges.billing_event_resolve(payload=row.payload)
    if not lock_key and billing_event.customer_key:
        # A dispute whose charge was learnt between the read before the lock and the lock:
        # serialize it on that customer too.
        customer_lock(customer_key=billing_event.customer_key)
    return billing_event


def event_mark_other_mode(row: StripeEvent, *, type_label: str, was_dead: bool) -> bool:
    """A test-mode event in a live-mode deployment (or the reverse): recorded, never applied.

    Runs inside event_apply's transaction; the mark and the audit row commit together."""
    signals.stripe_event_other_mode.send(
        sender=StripeEvent,
        event_id=row.event_id,
        event_type=row.type,
        livemode=row.livemode,
        account=row.account,
    )
    row.status = StripeEvent.Status.OTHER_MODE
    row.attempts += 1
    row.last_error = ""
    row.save(update_fields=["status", "attempts", "last_error", "updated_at"])
    mode = "live" if row.livemode else "test"
    metrics.events_other_mode.labels(livemode=mode).inc()
    metrics.events_processed.labels(type=type_label, outcome="other_mode").inc()
    log.info("billing.event.other_mode", event_id=row.event_id, livemode=row.livemode)
    if was_dead:
        transaction.on_commit(_refresh_dead_letter_gauge)
    return False


def subscription_fetch(*, subscription_id: str) -> dict[str, Any]:
    """Fetch a subscription from Stripe (outside any transaction: a slow API holds no lock)
    and send stripe_subscription_fetched in a transaction. Raises stripe.StripeError for the
    task to retry."""
    fetched_at = int(time.time())
    subscription = stripe_api.subscription_retrieve(subscription_id=subscription_id)
    with transaction.atomic():
        billing_event = stripe_events.subscription_fetched(subscription, fetched_at=fetched_at)
        signals.stripe_subscription_fetched.send(sender=StripeEvent, billing_event=billing_event)
    metrics.subscription_fetches.labels(outcome="fetched").inc()
    return subscription


def _error_text(error: BaseException) -> str:
    # Stripe keys and webhook secrets, should an error message quote one (dj-stripe's do).
    text = redact_text(f"{type(error).__name__}: {error}")
    return text[:MAX_ERROR_LENGTH]


def event_record_failure(*, event_id: str, error: BaseException, final: bool) -> None:
    """Note a failed attempt; after the last retry the event becomes a dead letter."""
    status = StripeEvent.Status.DEAD if final else StripeEvent.Status.FAILED
    updated = StripeEvent.objects.filter(event_id=event_id).exclude(
        status=StripeEvent.Status.APPLIED
    )
    updated.update(
        status=status, attempts=F("attempts") + 1, last_error=_error_text(error),
        updated_at=timezone.now(),
    )  # fmt: skip
    row = StripeEvent.objects.filter(event_id=event_id).values_list("type", flat=True).first()
    outcome = "dead" if final else "retry"
    metrics.events_processed.labels(type=metrics.event_type_label(row or ""), outcome=outcome).inc()
    log.warning("billing.event.failed", event_id=event_id, final=final, error=type(error).__name__)
    if final:
        _refresh_dead_letter_gauge()


def dead_letter_gauge_refresh() -> int:
    """Set tollgate_billing_dead_letters from the database (on every change, and every minute
    by beat, so a freshly started process reports it too)."""
    count = dead_letter_count()
    metrics.dead_letters.set(count)
    return count


_refresh_dead_letter_gauge = dead_letter_gauge_refresh


def dead_letter_reprocess(*, event_id: str, actor: context.Actor, reason: str) -> None:
    """Staff requeue a dead letter; the attempt counter restarts and the action is signalled
    with `actor`, the staff member acting."""
    with transaction.atomic():
        row = StripeEvent.objects.select_for_update().get(event_id=event_id)
        if row.status != StripeEvent.Status.DEAD:
            raise DeadLetterNotReprocessable(f"Event {event_id} is {row.status}, not dead.")
        row.status = StripeEvent.Status.RECEIVED
        row.attempts = 0
        row.save(update_fields=["status", "attempts", "updated_at"])
        signals.dead_letter_reprocessed.send(
            sender=StripeEvent,
            event_id=row.event_id,
            event_type=row.type,
            actor=actor,
            reason=reason,
        )
        transaction.on_commit(
            lambda: event_queue(event_id=row.event_id, customer_id=row.customer_id, mirror="")
        )
    _refresh_dead_letter_gauge()


def event_mirror_sync(*, event_id: str, customer_id: str) -> bool:
    """Bring dj-stripe's mirror up to date with one event (calls Stripe's API).

    Serialized per customer like event_apply, but under its own lock: a slow or failing Stripe
    API never holds up entitlements and audit. Raises the Stripe error for the task to retry.
    """
    with transaction.atomic():
        advisory_xact_lock("mirror", customer_id or event_id)
        row = StripeEvent.objects.select_for_update().get(event_id=event_id)
        if row.mirror_status == StripeEvent.MirrorStatus.SYNCED:
            return False
        djstripe_event = stripe_api.mirror_event(payload=row.payload)
        row.mirror_status = StripeEvent.MirrorStatus.SYNCED
        row.mirror_attempts += 1
        row.mirror_error = ""
        row.save(update_fields=["mirror_status", "mirror_attempts", "mirror_error", "updated_at"])
        if row.trigger_id:
            WebhookEventTrigger.objects.filter(pk=row.trigger_id).update(
                processed=True, event=djstripe_event
            )
    metrics.mirror_syncs.labels(outcome="synced").inc()
    return True


def event_mirror_failure(*, event_id: str, error: BaseException, final: bool) -> None:
    status = StripeEvent.MirrorStatus.FAILED if final else StripeEvent.MirrorStatus.PENDING
    StripeEvent.objects.filter(event_id=event_id).exclude(
        mirror_status=StripeEvent.MirrorStatus.SYNCED
    ).update(
        mirror_status=status,
        mirror_attempts=F("mirror_attempts") + 1,
        mirror_error=_error_text(error),
        updated_at=timezone.now(),
    )
    metrics.mirror_syncs.labels(outcome="failed" if final else "retry").inc()


def webhook_endpoint_configure(
    *, secrets: list[str], tolerance: int, url: str, uuid: UUID | None = None
) -> WebhookEndpoint:
    """Create or update a local endpoint (no Stripe API call) and replace its active secrets.

    The endpoint is the one with `uuid`, else the newest local one with the same `url`.

    Rotation: configure with the old and the new secret while Stripe signs with both, later
    with the new one only.
    """
    secrets = list(dict.fromkeys(secrets))  # de-duplicate, keep order
    with transaction.atomic():
        existing = WebhookEndpoint.objects.select_for_update()
        if uuid is not None:
            endpoint = existing.filter(djstripe_uuid=uuid).first()
        else:
            # Re-running the command for the same URL updates that endpoint (rotation).
            local = existing.filter(id__startswith=LOCAL_ENDPOINT_PREFIX, url=url)
            endpoint = local.order_by("-djstripe_id").first()
        if endpoint is None:
            endpoint = WebhookEndpoint(
                id=f"{LOCAL_ENDPOINT_PREFIX}{secrets_module.token_hex(12)}",
                enabled_events=["*"],
                status=WebhookEndpointStatus.enabled,
                livemode=settings.STRIPE_LIVE_MODE,
                api_version=settings.STRIPE_API_VERSION,
            )
            if uuid is not None:
                endpoint.djstripe_uuid = uuid
        endpoint.url = url
        endpoint.djstripe_tolerance = tolerance
        endpoint.secret = secrets[-1]  # dj-stripe's own field: the newest secret
        endpoint.save()
        WebhookSecret.objects.filter(endpoint=endpoint).exclude(secret__in=secrets).delete()
        for secret in secrets:
            WebhookSecret.objects.get_or_create(endpoint=endpoint, secret=secret)
    return endpoint
