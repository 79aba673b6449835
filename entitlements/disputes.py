"""Charge -> customer, for disputes: a dispute names only its charge.

Learnt from the payloads of processed events (a charge, a payment intent's latest charge, an
invoice's charge payments), with no Stripe API call; dj-stripe's Charge mirror is the last
fallback. A dispute whose customer is not known yet is parked by charge id (stripe_sync) and
claimed here for its customer as soon as that customer is learnt.
"""

import structlog

from entitlements import stripe_payloads as payloads
from entitlements.models import ChargeCustomer, ParkedEvent

logger = structlog.get_logger(__name__)

DISPUTE_EVENT = "charge.dispute.created"


def charge_customers_learn(*, event: dict) -> list[tuple[str, str]]:
    """Record the charge -> customer pairs an event's object states; return the new ones."""
    learnt = []
    for charge_id, customer_id in payloads.charge_customers(event["data"]["object"]):
        if _charge_customer_record(
            charge_id=charge_id, customer_id=customer_id, learnt_from=event["id"]
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
        logger.warning(
            "entitlements.charge_customer_conflict", charge=charge_id, kept=row.stripe_customer_id
        )
    return created


def _mirror_customer(charge_id: str) -> str:
    """dj-stripe's Charge mirror: the last fallback (it lags while Stripe's API is down)."""
    from djstripe.models import Charge

    customers = Charge.objects.filter(id=charge_id).values_list("customer_id", flat=True)
    return customers.first() or ""


def charge_customer(*, charge_id: str) -> str:
    """The customer of a charge: learnt from payloads, else dj-stripe's mirror, else ""."""
    if not charge_id:
        return ""
    learnt = ChargeCustomer.objects.filter(stripe_charge_id=charge_id)
    customer_id = learnt.values_list("stripe_customer_id", flat=True).first()
    if customer_id:
        return customer_id
    customer_id = _mirror_customer(charge_id)
    if customer_id:
        _charge_customer_record(
            charge_id=charge_id, customer_id=customer_id, learnt_from="djstripe.charge"
        )
    return customer_id


def dispute_customer(*, dispute: dict) -> str:
    """The customer of a dispute: its expanded charge, else what we know of its charge."""
    charge = dispute.get("charge")
    if isinstance(charge, dict) and payloads.customer_id_of(charge):
        return payloads.customer_id_of(charge)
    return charge_customer(charge_id=payloads.charge_id_of(dispute))


def parked_disputes_claim(*, charge_id: str, customer_id: str) -> int:
    """Hand the disputes parked on a charge to its now-known customer's parked events."""
    return ParkedEvent.objects.filter(
        stripe_charge_id=charge_id, stripe_customer_id="", applied_at__isnull=True
    ).update(stripe_customer_id=customer_id)


def parked_dispute_charges() -> list[str]:
    """Charge ids of the disputes still waiting for their customer, oldest first."""
    waiting = ParkedEvent.objects.filter(stripe_customer_id="", applied_at__isnull=True)
    charges = waiting.exclude(stripe_charge_id="").order_by("created", "event_id")
    return list(dict.fromkeys(charges.values_list("stripe_charge_id", flat=True)))
