"""Stripe events -> stored subscription state (then entitlements, see subscriptions.py).

Decided from the event payload and local state only: no Stripe API call on this path.

Each event is merged into the SubscriptionState of the subscription it concerns; every field
keeps the value of the newest event that carried it (by created, and inside one second by what
the payloads say: ordering.py), so an older event never overrides newer state and any order or
duplication of deliveries converges. Where the payloads cannot order a second, the subscription
is fetched from Stripe later, by billing's task, and that copy becomes the newest state. Refunds
and disputes are recorded per customer and decided when entitlements are computed. Events of a
customer not linked to a user yet are parked and applied when the link appears; a dispute
whose charge's customer is not known yet is parked until it is (see disputes.py).
"""

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from billing.models import StripeEvent
from config.context import Actor
from entitlements import disputes, metrics, ordering
from entitlements import stripe_payloads as payloads
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

SUBSCRIPTION_EVENTS = {
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
}

REVERSAL_EVENTS = {"charge.refunded", "charge.dispute.created"}
# The reason of the entitlement changes (and so of their audit rows) that a fetch causes.
FETCH_REASON = "customer.subscription fetched from Stripe (same-second events settled)"


# --- Customer -> user --------------------------------------------------------------------------


def _existing_user(user_id: int | None):
    if user_id is None:
        return None
    return get_user_model().objects.filter(pk=user_id).first()


def customer_link(
    *, customer_id: str, user, learnt_from: str, source_event_id: str | None
) -> CustomerLink | None:
    """Link a Stripe customer to a user (first link wins) and apply its parked events."""
    if not customer_id or user is None:
        return None
    link, created = CustomerLink.objects.get_or_create(
        stripe_customer_id=customer_id,
        defaults={
            "user": user,
            "learnt_from": learnt_from,
            "source_event_id": source_event_id or "",
        },
    )
    if not created and link.user_id != user.pk:
        logger.warning(
            "entitlements.customer_link_conflict", customer=customer_id, kept_user=link.user_id
        )
    if created:
        parked_events_apply(customer_id=customer_id)
    return link


def _djstripe_subscriber(customer_id: str):
    """dj-stripe's mirror: the last fallback (it lags while Stripe's API is down)."""
    from djstripe.models import Customer

    customer = Customer.objects.filter(id=customer_id).select_related("subscriber").first()
    if customer is None:
        return None
    if customer.subscriber_id:
        return customer.subscriber
    return _existing_user(payloads.user_id_from_metadata({"metadata": customer.metadata}))


def resolve_user(*, customer_id: str, obj: dict, event_id: str):
    """The user of a customer: our link, else metadata.user_id on the object, else dj-stripe."""
    link = CustomerLink.objects.filter(stripe_customer_id=customer_id).select_related("user")
    link = link.first()
    if link is not None:
        return link.user
    user = _existing_user(payloads.user_id_from_metadata(obj))
    learnt_from = "metadata.user_id"
    if user is None:
        user, learnt_from = _djstripe_subscriber(customer_id), "djstripe.subscriber"
    if user is not None:
        customer_link(
            customer_id=customer_id, user=user, learnt_from=learnt_from, source_event_id=event_id
        )
    return user


def _park(event: dict, customer_id: str, *, charge_id: str = "") -> None:
    _, created = ParkedEvent.objects.get_or_create(
        event_id=event["id"],
        defaults={
            "event_type": event["type"],
            "stripe_customer_id": customer_id,
            "stripe_charge_id": charge_id,
            "created": int(event["created"]),
            "payload": event,
        },
    )
    if created:
        metrics.PARKED_EVENTS.inc()
        if not customer_id:
            metrics.UNRESOLVED_EVENTS.labels(event_type=event["type"]).inc()
        logger.info(
            "entitlements.event_parked",
            event_id=event["id"],
            customer=customer_id,
            charge=charge_id,
        )


def state_replay(*, customer_ids: list[str] | None = None) -> int:
    """Re-merge billing's applied events into stored state (idempotent: newest wins per field).

    Repairs state that was lost or edited; entitlement rows are compared afterwards."""
    events = StripeEvent.objects.filter(status=StripeEvent.Status.APPLIED)
    if customer_ids:
        events = events.filter(customer_id__in=customer_ids)
    replayed = 0
    for payload in events.order_by("created", "event_id").values_list("payload", flat=True):
        stripe_event_apply(event=payload, sync=False)
        replayed += 1
    return replayed


def _parked_apply(parked) -> int:
    applied = 0
    for row in parked.filter(applied_at__isnull=True).select_for_update().order_by("created"):
        stripe_event_apply(event=row.payload)
        row.applied_at = timezone.now()
        row.save(update_fields=["applied_at"])
        applied += 1
    return applied


def parked_events_apply(*, customer_id: str) -> int:
    """Apply the events parked for a customer, now that it has a user (the merge makes their
    order irrelevant)."""
    return _parked_apply(ParkedEvent.objects.filter(stripe_customer_id=customer_id))


def _parked_disputes_release(*, charge_id: str, customer_id: str) -> int:
    """A charge's customer became known: its parked disputes are recorded against it now."""
    if not disputes.parked_disputes_claim(charge_id=charge_id, customer_id=customer_id):
        return 0
    parked = ParkedEvent.objects.filter(stripe_charge_id=charge_id, stripe_customer_id=customer_id)
    return _parked_apply(parked.filter(event_type=disputes.DISPUTE_EVENT))


def _charges_learn(event: dict) -> None:
    for charge_id, customer_id in disputes.charge_customers_learn(event=event):
        _parked_disputes_release(charge_id=charge_id, customer_id=customer_id)


def parked_disputes_retry() -> int:
    """Beat: resolve disputes still parked on their charge (a charge learnt concurrently, or
    dj-stripe's Charge mirror synced since) and apply them. Returns the events applied."""
    applied = 0
    for charge_id in disputes.parked_dispute_charges():
        with transaction.atomic():
            customer_id = disputes.charge_customer(charge_id=charge_id)
            if customer_id:
                applied += _parked_disputes_release(charge_id=charge_id, customer_id=customer_id)
    return applied


# --- Plans ---------------------------------------------------------------------------------


def plan_for_price(price: payloads.PriceRef | None, *, subscription_id: str, event_id: str):
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


def _subscription_update(event: dict) -> payloads.Update:
    obj = event["data"]["object"]
    update = payloads.subscription_update(obj, deleted=event["type"].endswith(".deleted"))
    plan = plan_for_price(
        update.price, subscription_id=update.subscription_id, event_id=event["id"]
    )
    if update.price is not None:
        update.values["plan_code"] = plan.code if plan else None
    return update


def _update_and_facts(event: dict) -> tuple[payloads.Update, ordering.Facts] | None:
    """What a subscription or invoice event says about its subscription, and the facts that
    place it among same-second events; None when it concerns no subscription."""
    event_type, obj = event["type"], event["data"]["object"]
    created = int(event["created"])
    if event_type in SUBSCRIPTION_EVENTS:
        update = _subscription_update(event)
        kind = event_type.rsplit(".", 1)[1]
        facts = ordering.Facts(
            event_id=event["id"],
            created=created,
            kind=kind if kind in {"created", "deleted"} else "updated",
            status=update.status,
            attributes=ordering.tracked_attributes(obj),
            previous=ordering.tracked_attributes(event["data"].get("previous_attributes") or {}),
            values=update.values,
        )
        return update, facts
    if event_type in {"invoice.paid", "invoice.payment_failed"}:
        update = payloads.invoice_update(obj, paid=event_type == "invoice.paid", created=created)
        if update is None:
            return None
        facts = ordering.Facts(
            event_id=event["id"],
            created=created,
            kind="invoice",
            status=update.status,
            values=update.values,
        )
        return update, facts
    return None


def _reversal_record(event: dict) -> str:
    """Record a full refund or a dispute of a customer; the customer's id ("" when nothing is
    reversed, or when a dispute's customer is not known yet and it is parked on its charge)."""
    event_type, obj = event["type"], event["data"]["object"]
    if event_type == "charge.refunded" and settings.ENTITLEMENTS_REVOKE_ON_REFUND:
        if not payloads.is_full_refund(obj):
            return ""
        kind, customer_id = CustomerReversal.Kind.REFUND, payloads.customer_id_of(obj)
    elif event_type == disputes.DISPUTE_EVENT and settings.ENTITLEMENTS_REVOKE_ON_DISPUTE:
        kind, customer_id = CustomerReversal.Kind.DISPUTE, disputes.dispute_customer(dispute=obj)
        if not customer_id:
            # Not lost: applied as soon as any payload (or the mirror) names the charge's customer.
            _park(event, "", charge_id=payloads.charge_id_of(obj))
            return ""
    else:
        return ""
    if not customer_id:
        # A charge without a customer belongs to no subscription: nothing to reverse.
        logger.info("entitlements.reversal_without_customer", event_id=event["id"])
        return ""
    CustomerReversal.objects.get_or_create(
        event_id=event["id"],
        defaults={
            "stripe_customer_id": customer_id,
            "kind": kind,
            "created": int(event["created"]),
        },
    )
    return customer_id


def _customer_resync(event: dict, customer_id: str) -> None:
    """Bring every known subscription of a customer in line after a reversal."""
    states = SubscriptionState.objects.select_for_update().filter(stripe_customer_id=customer_id)
    for state in states.order_by("pk"):
        subscription_sync(
            state=state, actor=STRIPE, reason=event["type"], source_event_id=event["id"]
        )


def _state_apply(
    *, update: payloads.Update, facts: ordering.Facts, reason: str, source_event_id, sync: bool
) -> SubscriptionState:
    state, _ = SubscriptionState.objects.select_for_update().get_or_create(
        stripe_subscription_id=update.subscription_id,
        defaults={"stripe_customer_id": update.customer_id},
    )
    if state_merge(state, facts):
        state.save()
    if state.unsettled_second is not None and facts.kind != "fetch":
        _settle_later(state.stripe_subscription_id)
    if sync:
        subscription_sync(state=state, actor=STRIPE, reason=reason, source_event_id=source_event_id)
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


def subscription_fetched_apply(*, subscription: dict, fetched_at: int) -> None:
    """Stripe's own copy of a subscription, fetched at `fetched_at`, is its newest state."""
    event = {"id": f"fetch:{fetched_at}", "type": "customer.subscription.fetched"}
    event.update(created=fetched_at, data={"object": subscription})
    update = _subscription_update(event)
    known = SubscriptionState.objects.filter(stripe_subscription_id=update.subscription_id)
    journal = known.values_list("journal", flat=True).first()
    if journal is None:
        return  # never seen in an event: nothing of ours depends on it
    if update.status in {"active", "trialing"}:
        # Stripe says the subscription is in good standing: no payment failure is outstanding.
        update.values["payment_failed_at"] = None
    elif update.status == "past_due":
        # Past due since the latest failed payment we were told of (the grace days run from
        # it), not since the fetch.
        failures = [
            entry["created"]
            for entry in journal
            if entry.get("kind") == "invoice" and entry.get("status") == "past_due"
        ]
        if failures:
            update.values["payment_failed_at"] = max(failures)
    facts = ordering.Facts(
        event_id=event["id"],
        created=fetched_at,
        kind="fetch",
        status=update.status,
        attributes=ordering.tracked_attributes(subscription),
        values=update.values,
    )
    _state_apply(update=update, facts=facts, reason=FETCH_REASON, source_event_id=None, sync=True)


def _apply_summary(event: dict, *, sync: bool) -> None:
    obj = event["data"]["object"]
    customer_id = payloads.customer_id_of(obj)
    version = (int(event["created"]), event["id"])
    summary = CustomerSummary.objects.select_for_update().filter(stripe_customer_id=customer_id)
    summary = summary.first()
    if summary is not None and (summary.event_created, summary.event_id) >= version:
        return
    keys = payloads.summary_lookup_keys(obj)
    known = set(Feature.objects.filter(lookup_key__in=keys).values_list("lookup_key", flat=True))
    if set(keys) - known:
        logger.warning("entitlements.unknown_lookup_keys", keys=sorted(set(keys) - known))
    CustomerSummary.objects.update_or_create(
        stripe_customer_id=customer_id,
        defaults={"lookup_keys": keys, "event_created": version[0], "event_id": version[1]},
    )
    if not sync:
        return
    for state in SubscriptionState.objects.filter(stripe_customer_id=customer_id):
        subscription_sync(
            state=state, actor=STRIPE, reason=event["type"], source_event_id=event["id"]
        )


def _link_from(event: dict) -> None:
    obj = event["data"]["object"]
    customer_id = payloads.customer_id_of(obj)
    if event["type"] == "checkout.session.completed":
        user_id = payloads.parse_user_id(obj.get("client_reference_id"))
        user_id = user_id or payloads.user_id_from_metadata(obj)
        learnt_from = "checkout.session"
    else:  # customer.created / customer.updated
        customer_id, user_id = obj.get("id", ""), payloads.user_id_from_metadata(obj)
        learnt_from = "customer.metadata"
    customer_link(
        customer_id=customer_id,
        user=_existing_user(user_id),
        learnt_from=learnt_from,
        source_event_id=event["id"],
    )


# No savepoint when called inside billing's transaction: a failure there rolls the whole event
# back and Celery retries it; nothing catches it half way.
@transaction.atomic(savepoint=False)
def stripe_event_apply(*, event: dict, sync: bool = True) -> None:
    """Apply one verified Stripe event to entitlements (called once per event id).

    With sync=False only the stored state is updated (reconciliation replaying the event log);
    entitlement rows are left for the comparison that follows."""
    event_type = event["type"]
    if event.get("account"):
        # A connected account's customers are not the platform's users: its customer cus_X is
        # not the platform's cus_X. Stored and audited by billing and audit, applied to nothing.
        logger.info("entitlements.connected_account_event", event_id=event["id"])
        return
    # First, so that a dispute parked on this event's charge is applied in this transaction.
    _charges_learn(event)
    if event_type in {"checkout.session.completed", "customer.created", "customer.updated"}:
        _link_from(event)
        return
    if event_type == "entitlements.active_entitlement_summary.updated":
        customer_id = payloads.customer_id_of(event["data"]["object"])
        if resolve_user(customer_id=customer_id, obj={}, event_id=event["id"]) is None:
            _park(event, customer_id)
            return
        _apply_summary(event, sync=sync)
        return
    if event_type in REVERSAL_EVENTS:
        customer_id = _reversal_record(event)
        if customer_id and sync:
            _customer_resync(event, customer_id)
        return
    found = _update_and_facts(event)
    if found is None:
        return
    update, facts = found
    user = resolve_user(
        customer_id=update.customer_id, obj=event["data"]["object"], event_id=event["id"]
    )
    if user is None:
        _park(event, update.customer_id)
        return
    _state_apply(
        update=update, facts=facts, reason=event_type, source_event_id=event["id"], sync=sync
    )
