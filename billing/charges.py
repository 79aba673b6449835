"""Charge -> customer: how a dispute, which names only its charge, finds its customer.

Learnt from the payloads of applied events (a charge, a payment intent's latest charge, a
dispute with its charge expanded, an invoice's expanded charge payments: BillingEvent's
charge_customers), with no Stripe API call; dj-stripe's Charge mirror is the last fallback. Read
by event_apply to serialize a dispute on its customer, and by entitlements to reverse it.
"""

from typing import Any

import structlog

from billing import stripe_events
from billing.models import ChargeCustomer
from billing.stripe_events import BillingEvent, Kind

log = structlog.get_logger(__name__)


def charge_customers_record(*, billing_event: BillingEvent) -> list[tuple[str, str]]:
    """Record the charge -> customer pairs an event states; return the new ones."""
    learnt = []
    for charge_id, customer_id in billing_event.charge_customers:
        if _charge_customer_record(
            charge_id=charge_id, customer_id=customer_id, learnt_from=billing_event.event_id
        ):
            learnt.append((charge_id, customer_id))
    return learnt


def _charge_customer_record(*, charge_id: str, customer_id: str, learnt_from: str) -> bool:
    row, created = ChargeCustomer.objects.get_or_create(
        stripe_charge_id=charge_id,
        defaults={"stripe_customer_id": customer_id, "learnt_from": learnt_from},
    )
    if not created and row.stripe_customer_id != customer_id:
        # A charge's customer never changes in Stripe: keep the first, say so.
        log.warning(
            "billing.charge_customer_conflict", charge=charge_id, kept=row.stripe_customer_id
        )
    return created


def _mirror_customer(charge_id: str) -> str:
    """dj-stripe's Charge mirror: the last fallback (it lags while Stripe's API is down)."""
    from djstripe.models import Charge

    customers = Charge.objects.filter(id=charge_id).values_list("customer_id", flat=True)
    return customers.first() or ""


def charge_customer(*, charge_id: str, record: bool = True) -> str:
    """The customer of a charge: learnt from payloads, else dj-stripe's mirror (remembered
    unless record=False), else ""."""
    if not charge_id:
        return ""
    learnt = ChargeCustomer.objects.filter(stripe_charge_id=charge_id)
    customer_id = learnt.values_list("stripe_customer_id", flat=True).first()
    if customer_id:
        return customer_id
    customer_id = _mirror_customer(charge_id)
    if customer_id and record:
        _charge_customer_record(
            charge_id=charge_id, customer_id=customer_id, learnt_from="djstripe.charge"
        )
    return customer_id


def customer_resolve(billing_event: BillingEvent, *, record: bool = True) -> BillingEvent:
    """The event with its customer resolved: a dispute's through its charge, when its payload
    does not name it (a connected account's charges are not ours to look up)."""
    if (
        billing_event.kind != Kind.PAYMENT_DISPUTED
        or billing_event.customer_id
        or billing_event.account
    ):
        return billing_event
    customer_id = charge_customer(charge_id=billing_event.charge_id, record=record)
    return billing_event.with_customer(customer_id) if customer_id else billing_event


def billing_event_resolve(*, payload: dict[str, Any]) -> BillingEvent:
    """A stored event as billing's signals carry it: parsed, its customer resolved, and the
    charges it names remembered (a later dispute of them finds its customer). Runs in the
    transaction that applies the event."""
    billing_event = customer_resolve(stripe_events.parse(payload))
    if not billing_event.account:  # a connected account's charges are not the platform's
        charge_customers_record(billing_event=billing_event)
    if billing_event.malformed:
        log.warning(
            "billing.event.malformed",
            event_id=billing_event.event_id,
            problems=billing_event.malformed,
        )
    return billing_event
