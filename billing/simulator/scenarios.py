"""The simulator's scenarios: what happens to one customer, as the events Stripe sends.

Each story starts as far in the past as it needs (a renewal one period ago, a lapse five days
ago) and ends just before now, so the periods it leaves behind are current: a newcomer's admin
shows live subscriptions next to lapsed, refunded and disputed ones. A scenario turns stories
into deliveries: in order, as a concurrent duplicate storm, or as an out-of-order burst.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billing.simulator.stripe_objects import DAY, PERIOD, Customer

HOUR = 3600
STORM_COPIES = 5  # each event of the duplicate storm is delivered this many times
STORM_CONCURRENCY = 4


@dataclass(frozen=True)
class Scenario:
    """The events of a scenario (in `created` order) and the order and manner of delivery."""

    name: str
    events: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    concurrency: int = 1
    # Objects Stripe's API knows but no event carries (the customers), for the fake Stripe API.
    objects: tuple[dict[str, Any], ...] = ()


Story = Callable[[Customer, int], None]


def _checkout(customer: Customer, at: int) -> None:
    """A new subscription through Checkout, all in one second as Stripe sends it: the session,
    the subscription created `incomplete`, its first invoice paid, and the update to `active`
    (previous attributes name `incomplete`)."""
    customer.period_start = at
    customer.status = "incomplete"
    customer.emit("checkout.session.completed", customer.checkout_session(at=at), at=at)
    customer.emit("customer.subscription.created", customer.subscription(), at=at)
    invoice = customer.invoice(paid=True, at=at, billing_reason="subscription_create")
    customer.emit("invoice.paid", invoice, at=at)
    customer.status = "active"
    customer.emit(
        "customer.subscription.updated",
        customer.subscription(),
        at=at,
        previous={"status": "incomplete"},
    )


def _trial(customer: Customer, at: int, *, days: int = 7) -> None:
    """A free trial through Checkout: no payment, access until trial_end."""
    customer.period_start = at
    customer.trial_end = at + days * DAY
    customer.status = "trialing"
    customer.emit("checkout.session.completed", customer.checkout_session(at=at), at=at)
    customer.emit("customer.subscription.created", customer.subscription(), at=at)


def _renew(customer: Customer, at: int, *, status: str = "active") -> None:
    """The period rolls over: the subscription moves to the next period (previous attributes
    name the old one); its invoice's events follow in the same second."""
    previous = {"items": customer.items()}
    customer.period_start += PERIOD
    customer.status = status
    customer.emit(
        "customer.subscription.updated", customer.subscription(), at=at, previous=previous
    )


def checkout(customer: Customer, now: int) -> None:
    _checkout(customer, now - 60)


def trial(customer: Customer, now: int) -> None:
    """A trial that is still running: the features until trial_end, with no grace days."""
    _trial(customer, now - 2 * DAY)


def trial_ends_paused(customer: Customer, now: int) -> None:
    """A trial without a payment method: Stripe warns three days ahead, then pauses it."""
    _trial(customer, now - 8 * DAY)
    assert customer.trial_end is not None  # set by _trial: narrows the type for mypy
    warned = customer.trial_end - 3 * DAY
    customer.emit("customer.subscription.trial_will_end", customer.subscription(), at=warned)
    customer.status = "paused"
    customer.emit(
        "customer.subscription.paused",
        customer.subscription(),
        at=customer.trial_end,
        previous={"status": "trialing"},
    )


def renewal(customer: Customer, now: int) -> None:
    _checkout(customer, now - PERIOD - HOUR)
    _renew(customer, now - HOUR)
    invoice = customer.invoice(paid=True, at=now - HOUR, billing_reason="subscription_cycle")
    customer.emit("invoice.paid", invoice, at=now - HOUR)


def _change_plan(customer: Customer, at: int, plan: str) -> None:
    previous = {"items": customer.items()}
    customer.plan = plan
    customer.emit(
        "customer.subscription.updated", customer.subscription(), at=at, previous=previous
    )


def upgrade(customer: Customer, now: int) -> None:
    customer.plan = "premium"
    _checkout(customer, now - 10 * DAY)
    _change_plan(customer, now - HOUR, "vip")
    # The proration is invoiced at once on an upgrade.
    invoice = customer.invoice(paid=True, at=now - HOUR, billing_reason="subscription_update")
    customer.emit("invoice.paid", invoice, at=now - HOUR)


def downgrade(customer: Customer, now: int) -> None:
    customer.plan = "vip"
    _checkout(customer, now - 10 * DAY)
    _change_plan(customer, now - HOUR, "premium")


def _payment_failed(customer: Customer, at: int, *, retry: bool = False) -> None:
    invoice = customer.invoice(paid=False, at=at, billing_reason="subscription_cycle", retry=retry)
    customer.emit("invoice.payment_failed", invoice, at=at)


def payment_failure_recovery(customer: Customer, now: int) -> None:
    _checkout(customer, now - PERIOD - 2 * HOUR)
    _renew(customer, now - 2 * HOUR, status="past_due")
    _payment_failed(customer, now - 2 * HOUR)
    # Smart Retries succeed an hour later: the same invoice is paid, the subscription recovers.
    invoice = customer.invoice(
        paid=True, at=now - HOUR, billing_reason="subscription_cycle", retry=True
    )
    customer.emit("invoice.paid", invoice, at=now - HOUR)
    previous = {"status": "past_due"}
    customer.status = "active"
    customer.emit(
        "customer.subscription.updated", customer.subscription(), at=now - HOUR, previous=previous
    )


def payment_failure_lapse(customer: Customer, now: int) -> None:
    failed_at = now - 5 * DAY
    _checkout(customer, failed_at - PERIOD)
    _renew(customer, failed_at, status="past_due")
    _payment_failed(customer, failed_at)
    _payment_failed(customer, failed_at + 2 * DAY, retry=True)
    _payment_failed(customer, now - HOUR, retry=True)
    # Retries exhausted: Stripe cancels the subscription.
    customer.status = "canceled"
    customer.canceled_at = now - HOUR
    customer.emit(
        "customer.subscription.deleted",
        customer.subscription(),
        at=now - HOUR,
        previous={"status": "past_due"},
    )


def cancel_at_period_end(customer: Customer, now: int) -> None:
    _checkout(customer, now - 10 * DAY)
    customer.cancel_at_period_end = True
    customer.canceled_at = now - HOUR
    customer.emit(
        "customer.subscription.updated",
        customer.subscription(),
        at=now - HOUR,
        previous={"cancel_at_period_end": False, "cancel_at": None, "canceled_at": None},
    )


def refund(customer: Customer, now: int) -> None:
    _checkout(customer, now - 2 * DAY)
    customer.emit("charge.refunded", customer.charge(refunded=True), at=now - HOUR)


def dispute(customer: Customer, now: int) -> None:
    _checkout(customer, now - 5 * DAY)
    customer.emit("charge.dispute.created", customer.dispute(at=now - HOUR), at=now - HOUR)


STORIES: dict[str, Story] = {
    "checkout": checkout,
    "trial": trial,
    "trial-ends-paused": trial_ends_paused,
    "renewal": renewal,
    "upgrade": upgrade,
    "downgrade": downgrade,
    "payment-failure-recovery": payment_failure_recovery,
    "payment-failure-lapse": payment_failure_lapse,
    "cancel-at-period-end": cancel_at_period_end,
    "refund": refund,
    "dispute": dispute,
}
# Delivery patterns over a story: the storm over a checkout, the burst over an upgrade.
PATTERNS = {"duplicate-storm": checkout, "out-of-order": upgrade}
SCENARIO_NAMES = (*STORIES, *PATTERNS)


def build(name: str, *, user_ids: list[int], rng: random.Random, now: int) -> Scenario:
    """The events of scenario `name` for one customer per user, and how to deliver them."""
    story = STORIES.get(name) or PATTERNS[name]
    events: list[dict[str, Any]] = []
    customers: list[dict[str, Any]] = []
    for user_id in user_ids:
        customer = Customer(rng=rng, user_id=user_id, plan="premium", period_start=now)
        story(customer, now)
        events.extend(customer.events)
        customers.append(customer.customer())
    objects = tuple(customers)
    if name == "duplicate-storm":
        deliveries = [event for event in events for _ in range(STORM_COPIES)]
        rng.shuffle(deliveries)
        return Scenario(name, events, deliveries, STORM_CONCURRENCY, objects)
    if name == "out-of-order":
        # Newest first: every event arrives before the ones it follows (same-second ones too).
        newest_first = sorted(reversed(events), key=lambda e: -e["created"])
        return Scenario(name, events, newest_first, 1, objects)
    return Scenario(name, events, list(events), 1, objects)
