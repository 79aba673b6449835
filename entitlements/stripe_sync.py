"""Billing events -> stored subscription state (then entitlements, see subscriptions.py).

Decided from billing's BillingEvent (billing/stripe_events.py read the payload, billing resolved
a dispute's customer through its charge) and local state only: no Stripe API call on this path.

Each event is merged into the SubscriptionState of the subscription it concerns; every field
keeps the value of the newest event that carried it (by created, and inside one second by what
the payloads say: ordering.py), so an older event never overrides newer state and any order or
duplication of deliveries converges. Where the payloads cannot order a second, the subscription
is fetched from Stripe later, by billing's task, and that copy becomes the newest state. Refunds
and disputes are recorded per customer and decided when entitlements are computed. Events of a
customer not linked to a user yet are parked and applied when the link appears; a dispute
whose charge's customer is not known yet is parked until it is (see disputes.py).

Parked events that an event releases (it links their customer, or names their charge's
customer) are applied before the rest of it, in the same transaction, by one loop
(_apply_with_released): nothing here calls back into stripe_event_apply.
"""

from collections.abc import Iterator
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from billing import charges, stripe_events
from billing import services as billing_services
from billing.db import insert_ignoring_conflict
from billing.models import StripeEvent
from billing.stripe_events import BillingEvent, Kind, PriceRef, SubscriptionChange
from config.context import Actor
from entitlements import disputes, metrics, ordering, state_batch
from entitlements.models import (
    CustomerLink,
    CustomerReversal,
    CustomerSummary,
    Feature,
    ParkedEvent,
    Plan,
    SubscriptionState,
    UnknownPrice,
)
from entitlements.subscriptions import state_merge, subscription_sync

logger = structlog.get_logger(__name__)
STRIPE = Actor(kind="stripe")

LINK_KINDS = frozenset({Kind.CHECKOUT_COMPLETED, Kind.CUSTOMER_CHANGED})
REVERSAL_KINDS = frozenset({Kind.PAYMENT_REFUNDED, Kind.PAYMENT_DISPUTED})
# The reason of the entitlement changes (and so of their audit rows) that a fetch causes.
FETCH_REASON = "customer.subscription fetched from Stripe (same-second events settled)"

# What applying one event yields: each parked event it releases, to be applied (by
# _apply_with_released) before the event goes on.
Released = Iterator[ParkedEvent]


# --- Customer -> user --------------------------------------------------------------------------


def _existing_user(user_id: int | None) -> User | None:
    if user_id is None:
        return None
    return get_user_model().objects.filter(pk=user_id).first()


def customer_link(
    *, customer_id: str, user: User | None, learnt_from: str, source_event_id: str | None
) -> list[ParkedEvent]:
    """Link a Stripe customer to a user (first link wins); the events parked for the customer,
    which the caller applies now."""
    if not customer_id or user is None:
        return []
    if _link_insert(customer_id, user, learnt_from, source_event_id) is not None:
        return []
    return _unapplied(ParkedEvent.objects.filter(stripe_customer_id=customer_id))


def _link_insert(
    customer_id: str, user: User, learnt_from: str, source_event_id: str | None
) -> int | None:
    """Insert the link unless the customer has one; None if inserted, else the id of the user
    the existing link keeps (the first link wins).

    One INSERT ... ON CONFLICT DO NOTHING: a new link (the usual case) costs one statement, not
    get_or_create's read, savepoint, insert and release."""
    link = CustomerLink(
        stripe_customer_id=customer_id,
        user=user,
        learnt_from=learnt_from,
        source_event_id=source_event_id or "",
    )
    if insert_ignoring_conflict(link, conflict_fields=["stripe_customer_id"]) is not None:
        return None
    kept = CustomerLink.objects.filter(stripe_customer_id=customer_id)
    kept_user: int = kept.values_list("user_id", flat=True).get()
    if kept_user != user.pk:
        logger.warning(
            "entitlements.customer_link_conflict", customer=customer_id, kept_user=kept_user
        )
    return kept_user


def _djstripe_subscriber(customer_id: str) -> User | None:
    """dj-stripe's mirror: the last fallback (it lags while Stripe's API is down)."""
    from djstripe.models import Customer

    customer = Customer.objects.filter(id=customer_id).select_related("subscriber").first()
    if customer is None:
        return None
    if customer.subscriber_id:
        # dj-stripe ships no types; its subscriber model is AUTH_USER_MODEL (the default).
        subscriber: User = customer.subscriber
        return subscriber
    return _existing_user(stripe_events.user_id_from_metadata({"metadata": customer.metadata}))


def resolve_user(
    *, customer_id: str, user_id: int | None, event_id: str
) -> tuple[User | None, list[ParkedEvent]]:
    """The user linked to a customer: our link, else (linked now) the user the payload names
    (metadata.user_id), else dj-stripe's; and the parked events a new link releases."""
    links = CustomerLink.objects.filter(stripe_customer_id=customer_id).select_related("user")
    link = links.first()
    if link is not None:
        return link.user, []
    user = _existing_user(user_id)
    learnt_from = "metadata.user_id"
    if user is None:
        user, learnt_from = _djstripe_subscriber(customer_id), "djstripe.subscriber"
    if user is None:
        return None, []
    kept_user = _link_insert(customer_id, user, learnt_from, event_id)
    if kept_user is not None:  # linked meanwhile (first link wins): that link's user
        return _existing_user(kept_user), []
    return user, _unapplied(ParkedEvent.objects.filter(stripe_customer_id=customer_id))


def _park(billing_event: BillingEvent, customer_id: str, *, charge_id: str = "") -> None:
    _, created = ParkedEvent.objects.get_or_create(
        event_id=billing_event.event_id,
        defaults={
            "event_type": billing_event.type,
            "stripe_customer_id": customer_id,
            "stripe_charge_id": charge_id,
            "created": billing_event.created,
            "payload": stripe_events.as_json(billing_event),
        },
    )
    if created:
        metrics.PARKED_EVENTS.inc()
        if not customer_id:
            metrics.UNRESOLVED_EVENTS.labels(event_type=billing_event.type).inc()
        logger.info(
            "entitlements.event_parked",
            event_id=billing_event.event_id,
            customer=customer_id,
            charge=charge_id,
        )


def _parked_event(row: ParkedEvent) -> BillingEvent:
    billing_event = stripe_events.from_json(row.payload)
    if not billing_event.customer_id and row.stripe_customer_id:
        # A dispute parked on its charge, claimed for the charge's customer since.
        billing_event = billing_event.with_customer(row.stripe_customer_id)
    return billing_event


def _unapplied(parked: QuerySet[ParkedEvent]) -> list[ParkedEvent]:
    return list(parked.filter(applied_at__isnull=True).select_for_update().order_by("created"))


def state_replay(*, customer_ids: list[str] | None = None) -> int:
    """Re-merge billing's applied events into stored state (idempotent: newest wins per field).

    Repairs state that was lost or edited; entitlement rows are compared afterwards."""
    events = StripeEvent.objects.filter(status=StripeEvent.Status.APPLIED)
    if customer_ids:
        events = events.filter(customer_id__in=customer_ids)
    replayed = 0
    for payload in events.order_by("created", "event_id").values_list("payload", flat=True):
        billing_event = charges.customer_resolve(stripe_events.parse(payload))
        stripe_event_apply(billing_event=billing_event, sync=False)
        replayed += 1
    return replayed


def _parked_disputes_release(*, charge_id: str, customer_id: str) -> list[ParkedEvent]:
    """A charge's customer became known: its parked disputes are recorded against it now."""
    if not disputes.parked_disputes_claim(charge_id=charge_id, customer_id=customer_id):
        return []
    parked = ParkedEvent.objects.filter(stripe_charge_id=charge_id, stripe_customer_id=customer_id)
    return _unapplied(parked.filter(event_type=stripe_events.CHARGE_DISPUTE_CREATED))


def _charges_release(billing_event: BillingEvent) -> Released:
    for charge_id, customer_id in billing_event.charge_customers:
        yield from _parked_disputes_release(charge_id=charge_id, customer_id=customer_id)


def parked_disputes_retry() -> int:
    """Beat: resolve disputes still parked on their charge (a charge learnt concurrently, or
    dj-stripe's Charge mirror synced since) and apply them. Returns the events applied."""
    applied = 0
    for charge_id in disputes.parked_dispute_charges():
        with transaction.atomic():
            customer_id = charges.charge_customer(charge_id=charge_id)
            if not customer_id:
                continue
            # Serialized with the customer's events, as a dispute applied by billing is.
            billing_services.customer_lock(customer_key=customer_id)
            for row in _parked_disputes_release(charge_id=charge_id, customer_id=customer_id):
                _apply_with_released(_parked_event(row), parked=row, sync=True)
                applied += 1
    return applied


# --- Plans ---------------------------------------------------------------------------------


def plan_for_price(price: PriceRef | None, *, subscription_id: str, event_id: str) -> Plan | None:
    """The plan of a price (lookup_key, price metadata, product metadata); unknown is flagged."""
    if price is None:
        return None
    codes = list(price.plan_codes)
    if price.product_id and not codes:
        from djstripe.models import Product

        product = Product.objects.filter(id=price.product_id).only("metadata").first()
        if product is not None and (product.metadata or {}).get("plan_code"):
            codes.append(str(product.metadata["plan_code"]))
    plans = {plan.code: plan for plan in Plan.objects.filter(code__in=codes)}
    for code in codes:
        if code in plans:
            return plans[code]
    flag, created = UnknownPrice.objects.get_or_create(
        price_id=price.price_id,
        defaults={
            "product_id": price.product_id,
            "lookup_key": price.lookup_key,
            "stripe_subscription_id": subscription_id,
            "last_event_id": event_id,
        },
    )
    if not created:
        flag.occurrences += 1
        flag.last_event_id = event_id
        flag.save(update_fields=["occurrences", "last_event_id", "last_seen_at"])
    metrics.UNKNOWN_PRICES.inc()
    logger.warning("entitlements.unknown_price", price=price.price_id, event_id=event_id)
    return None


# --- Events --------------------------------------------------------------------------------


def _change_values(
    billing_event: BillingEvent,
) -> tuple[SubscriptionChange, dict[str, Any]] | None:
    """The subscription an event concerns and the values it sets there (a subscription's price
    mapped to a plan); None when it concerns no subscription."""
    change = billing_event.subscription
    if change is None:
        return None
    values = dict(change.values)
    if change.price is not None:
        plan = plan_for_price(
            change.price, subscription_id=change.subscription_id, event_id=billing_event.event_id
        )
        values["plan_code"] = plan.code if plan else None
    return change, values


def _facts(
    billing_event: BillingEvent, change: SubscriptionChange, values: dict[str, Any]
) -> ordering.Facts:
    """What places the event among its subscription's events of the same second."""
    return ordering.Facts(
        event_id=billing_event.event_id,
        created=billing_event.created,
        kind=change.stage,
        status=change.status,
        attributes=dict(change.attributes),
        previous=dict(change.previous),
        values=values,
    )


def _reversal_record(billing_event: BillingEvent) -> str:
    """Record a full refund or a dispute of a customer; the customer's id ("" when nothing is
    reversed, or when a dispute's customer is not known yet and it is parked on its charge)."""
    kind = billing_event.kind
    customer_id = billing_event.customer_id
    if kind == Kind.PAYMENT_REFUNDED and settings.ENTITLEMENTS_REVOKE_ON_REFUND:
        if not billing_event.full_refund:
            return ""
        reversal = CustomerReversal.Kind.REFUND
    elif kind == Kind.PAYMENT_DISPUTED and settings.ENTITLEMENTS_REVOKE_ON_DISPUTE:
        reversal = CustomerReversal.Kind.DISPUTE
        if not customer_id:
            # Not lost: applied as soon as any payload (or the mirror) names the charge's customer.
            _park(billing_event, "", charge_id=billing_event.charge_id)
            return ""
    else:
        return ""
    if not customer_id:
        # A charge without a customer belongs to no subscription: nothing to reverse.
        logger.info("entitlements.reversal_without_customer", event_id=billing_event.event_id)
        return ""
    CustomerReversal.objects.get_or_create(
        event_id=billing_event.event_id,
        defaults={
            "stripe_customer_id": customer_id,
            "kind": reversal,
            "created": billing_event.created,
        },
    )
    return customer_id


def _customer_resync(billing_event: BillingEvent, customer_id: str) -> None:
    """Bring every known subscription of a customer in line after a reversal."""
    for state in state_batch.customer_states(customer_id, lock=True):
        subscription_sync(
            state=state,
            actor=STRIPE,
            reason=billing_event.type,
            source_event_id=billing_event.event_id,
        )


def _state_apply(
    *,
    change: SubscriptionChange,
    facts: ordering.Facts,
    reason: str,
    source_event_id: str | None,
    sync: bool,
    user: User | None = None,
) -> SubscriptionState:
    # Read, merged and stored through state_batch: in a batch of events (billing/batches.py)
    # the batch's states are written together, in one upsert, when it ends.
    state = state_batch.state_locked(change.subscription_id)
    if state is None:
        # A new subscription: merged in memory and inserted in one statement (not
        # get_or_create's savepoint, insert, release, then an UPDATE for the merge).
        fresh = SubscriptionState(
            stripe_subscription_id=change.subscription_id, stripe_customer_id=change.customer_id
        )
        state_merge(fresh, facts)
        created = state_batch.state_created(fresh)
        if created is None:
            # Inserted meanwhile by a transaction not holding this customer's lock: merge
            # into that row, as into any stored state.
            state = SubscriptionState.objects.select_for_update().get(
                stripe_subscription_id=change.subscription_id
            )
            if state_merge(state, facts):
                state.save()
        else:
            state = created
    elif state_merge(state, facts):
        state_batch.state_changed(state)
    if state.unsettled_second is not None and facts.kind != "fetch":
        _settle_later(state.stripe_subscription_id)
    if sync:
        subscription_sync(
            state=state, actor=STRIPE, reason=reason, source_event_id=source_event_id,
            user=user if state.stripe_customer_id == change.customer_id else None,
        )  # fmt: skip
    return state


def _settle_later(subscription_id: str) -> None:
    """The payloads could not order a second's events: the best guess stands, and the
    subscription is fetched from Stripe in the background (never blocking this event)."""
    from billing import tasks as billing_tasks

    metrics.UNSETTLED_SECONDS.inc()
    logger.info("entitlements.subscription_unsettled", subscription=subscription_id)
    transaction.on_commit(
        lambda: billing_tasks.fetch_subscription.delay(subscription_id), robust=True
    )


def subscription_fetched_apply(*, billing_event: BillingEvent) -> None:
    """Stripe's own copy of a subscription, fetched at `created`, is its newest state."""
    found = _change_values(billing_event)
    if found is None:
        return
    change, values = found
    known = SubscriptionState.objects.filter(stripe_subscription_id=change.subscription_id)
    journal = known.values_list("journal", flat=True).first()
    if journal is None:
        return  # never seen in an event: nothing of ours depends on it
    if change.status in {"active", "trialing"}:
        # Stripe says the subscription is in good standing: no payment failure is outstanding.
        values["payment_failed_at"] = None
    elif change.status == "past_due":
        # Past due since the latest failed payment we were told of (the grace days run from
        # it), not since the fetch.
        failures = [
            entry["created"]
            for entry in journal
            if entry.get("kind") == "invoice" and entry.get("status") == "past_due"
        ]
        if failures:
            values["payment_failed_at"] = max(failures)
    facts = _facts(billing_event, change, values)
    _state_apply(change=change, facts=facts, reason=FETCH_REASON, source_event_id=None, sync=True)


def _apply_summary(billing_event: BillingEvent, *, sync: bool) -> None:
    customer_id = billing_event.customer_id
    version = (billing_event.created, billing_event.event_id)
    summaries = CustomerSummary.objects.select_for_update().filter(stripe_customer_id=customer_id)
    summary = summaries.first()
    if summary is not None and (summary.event_created, summary.event_id) >= version:
        return
    keys = list(billing_event.entitlement_lookup_keys)
    known = set(Feature.objects.filter(lookup_key__in=keys).values_list("lookup_key", flat=True))
    if set(keys) - known:
        logger.warning("entitlements.unknown_lookup_keys", keys=sorted(set(keys) - known))
    CustomerSummary.objects.update_or_create(
        stripe_customer_id=customer_id,
        defaults={"lookup_keys": keys, "event_created": version[0], "event_id": version[1]},
    )
    if not sync:
        return
    for state in state_batch.customer_states(customer_id, lock=False):
        subscription_sync(
            state=state,
            actor=STRIPE,
            reason=billing_event.type,
            source_event_id=billing_event.event_id,
        )


def _link_from(billing_event: BillingEvent) -> list[ParkedEvent]:
    checkout = billing_event.kind == Kind.CHECKOUT_COMPLETED
    return customer_link(
        customer_id=billing_event.customer_id,
        user=_existing_user(billing_event.user_id),
        learnt_from="checkout.session" if checkout else "customer.metadata",
        source_event_id=billing_event.event_id,
    )


def _event_apply(billing_event: BillingEvent, *, sync: bool) -> Released:
    """Apply one event; yields each parked event it releases, which is applied before this
    event goes on (a dispute parked on this event's charge, the events parked for a customer
    this event links), as they always were."""
    if billing_event.account:
        # A connected account's customers are not the platform's users: its customer cus_X is
        # not the platform's cus_X. Stored and audited by billing and audit, applied to nothing.
        logger.info("entitlements.connected_account_event", event_id=billing_event.event_id)
        return
    # First, so that a dispute parked on this event's charge is applied before the event.
    yield from _charges_release(billing_event)
    if billing_event.kind in LINK_KINDS:
        yield from _link_from(billing_event)
        return
    if billing_event.kind == Kind.ENTITLEMENT_SUMMARY_UPDATED:
        customer_id = billing_event.customer_id
        user, released = resolve_user(
            customer_id=customer_id, user_id=None, event_id=billing_event.event_id
        )
        yield from released
        if user is None:
            _park(billing_event, customer_id)
            return
        _apply_summary(billing_event, sync=sync)
        return
    if billing_event.kind in REVERSAL_KINDS:
        customer_id = _reversal_record(billing_event)
        if customer_id and sync:
            _customer_resync(billing_event, customer_id)
        return
    found = _change_values(billing_event)
    if found is None:
        return
    change, values = found
    user, released = resolve_user(
        customer_id=change.customer_id,
        user_id=billing_event.user_id,
        event_id=billing_event.event_id,
    )
    yield from released
    if user is None:
        _park(billing_event, change.customer_id)
        return
    _state_apply(
        change=change,
        facts=_facts(billing_event, change, values),
        reason=billing_event.type,
        source_event_id=billing_event.event_id,
        sync=sync,
        user=user,  # the customer's linked user, resolved above under the customer's lock
    )


def _apply_with_released(
    billing_event: BillingEvent, *, sync: bool, parked: ParkedEvent | None = None
) -> None:
    """Apply an event and, before it goes on, each parked event it releases (and theirs before
    them), with one explicit stack: no function calls back into stripe_event_apply."""
    stack = [(_event_apply(billing_event, sync=sync), parked)]
    while stack:
        applying, row = stack[-1]
        released = next(applying, None)
        if released is not None:
            # A parked event is applied as a live one (sync), even during a replay.
            stack.append((_event_apply(_parked_event(released), sync=True), released))
            continue
        stack.pop()
        if row is not None:
            row.applied_at = timezone.now()
            row.save(update_fields=["applied_at"])


# No savepoint when called inside billing's transaction: a failure there rolls the whole event
# back and Celery retries it; nothing catches it half way.
@transaction.atomic(savepoint=False)
def stripe_event_apply(*, billing_event: BillingEvent, sync: bool = True) -> None:
    """Apply one billing event to entitlements (called once per event id).

    With sync=False only the stored state is updated (reconciliation replaying the event log);
    entitlement rows are left for the comparison that follows."""
    _apply_with_released(billing_event, sync=sync)
