"""Disputes waiting for their customer: a dispute names only its charge.

billing resolves a dispute's customer through its charge (billing/charges.py: charges learnt
from applied events' payloads, then dj-stripe's Charge mirror). A dispute whose customer is not
known yet is parked by charge id (stripe_sync) and claimed here for its customer as soon as any
event names the charge with its customer, or beat finds it (parked_dispute_charges).
"""

from entitlements.models import ParkedEvent


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
