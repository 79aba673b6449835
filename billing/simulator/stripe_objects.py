"""Stripe objects and event envelopes of one simulated customer (API version 2026-05-27.dahlia).

Every object starts as a deep copy of Stripe's example (stripe_examples.json) and only the
fields a scenario needs are set, so the payloads keep Stripe's real shape. At this API version
the billing period lives on the subscription items and an invoice names its subscription under
parent.subscription_details.
"""

import copy
import random
import string
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from billing.simulator.examples import example

DAY = 86400
PERIOD = 30 * DAY
# Monthly prices of the demo plans, in cents; the price's lookup_key is the plan code.
PLAN_AMOUNTS = {"free": 0, "premium": 2900, "vip": 9900, "enterprise": 49900}
_ID_ALPHABET = string.ascii_letters + string.digits


def stripe_id(rng: random.Random, prefix: str) -> str:
    """An id shaped like Stripe's (prefix, 24 alphanumerics), reproducible from the seed."""
    return f"{prefix}_sim" + "".join(rng.choices(_ID_ALPHABET, k=21))


def price(plan: str) -> dict[str, Any]:
    return example(
        "price",
        id=f"price_tollgate_{plan}_monthly",
        product=f"prod_tollgate_{plan}",
        lookup_key=plan,
        nickname=f"{plan} monthly",
        metadata={"plan_code": plan},
        unit_amount=PLAN_AMOUNTS[plan],
        unit_amount_decimal=str(PLAN_AMOUNTS[plan]),
        created=1700000000,
    )


@dataclass
class Customer:
    """One Stripe customer of one demo user, with one subscription whose state the scenario
    changes step by step; each method returns the object as Stripe would send it now."""

    rng: random.Random
    user_id: int
    plan: str
    period_start: int
    customer_id: str = ""
    subscription_id: str = ""
    item_id: str = ""
    charge_id: str = ""
    status: str = "active"
    trial_end: int | None = None
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    last_created: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    # The latest invoice and its payment attempts: a retry is another attempt at the same one.
    invoice_id: str = ""
    invoice_attempts: int = 0

    def __post_init__(self) -> None:
        self.customer_id = self.customer_id or stripe_id(self.rng, "cus")
        self.subscription_id = self.subscription_id or stripe_id(self.rng, "sub")
        self.item_id = self.item_id or stripe_id(self.rng, "si")
        self.charge_id = self.charge_id or stripe_id(self.rng, "ch")

    @property
    def period_end(self) -> int:
        return self.period_start + PERIOD

    @property
    def amount(self) -> int:
        return PLAN_AMOUNTS[self.plan]

    # --- Events ---------------------------------------------------------------------------

    def emit(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        at: int,
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Wrap `obj` in Stripe's event envelope. `created` never decreases per customer and,
        as in Stripe, the events of one step (a checkout, a renewal, a dunning retry) share
        one second; their random ids say nothing of their order."""
        self.last_created = max(at, self.last_created)
        envelope = example(
            "event",
            id=stripe_id(self.rng, "evt"),
            type=event_type,
            created=self.last_created,
            api_version=settings.STRIPE_API_VERSION,
            livemode=False,
            pending_webhooks=1,
            request={"id": None, "idempotency_key": None},
            data={"object": obj},
        )
        if previous is not None:
            envelope["data"]["previous_attributes"] = previous
        self.events.append(envelope)
        return envelope

    # --- Objects --------------------------------------------------------------------------

    def customer(self) -> dict[str, Any]:
        """The customer as Stripe's API answers it (no event carries it in these stories).
        dj-stripe links its mirrored Customer to the user through `djstripe_subscriber`."""
        return example(
            "customer",
            id=self.customer_id,
            email=f"demo-customer-{self.user_id}@example.com",
            name=f"Demo user {self.user_id}",
            created=self.period_start,
            discount=None,
            default_source=None,
            invoice_settings={
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            livemode=False,
            metadata={"user_id": str(self.user_id), "djstripe_subscriber": str(self.user_id)},
        )

    def checkout_session(self, *, at: int) -> dict[str, Any]:
        return example(
            "checkout.session",
            id=stripe_id(self.rng, "cs"),
            object="checkout.session",
            mode="subscription",
            status="complete",
            payment_status="paid",
            client_reference_id=str(self.user_id),
            customer=self.customer_id,
            subscription=self.subscription_id,
            amount_subtotal=self.amount,
            amount_total=self.amount,
            currency="usd",
            created=at,
            livemode=False,
            metadata={},
            url=None,
        )

    def items(self) -> dict[str, Any]:
        subscription = example("subscription")
        item = copy.deepcopy(subscription["items"]["data"][0])
        item.update(
            id=self.item_id,
            subscription=self.subscription_id,
            price=price(self.plan),
            quantity=1,
            created=self.period_start,
            current_period_start=self.period_start,
            current_period_end=self.period_end,
        )
        item.pop("plan", None)  # the legacy Plan object: Tollgate reads the price
        return {
            "object": "list",
            "data": [item],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={self.subscription_id}",
        }

    def subscription(self) -> dict[str, Any]:
        ended = self.status == "canceled"
        return example(
            "subscription",
            id=self.subscription_id,
            customer=self.customer_id,
            status=self.status,
            items=self.items(),
            created=self.period_start,
            start_date=self.period_start,
            billing_cycle_anchor=self.period_start,
            cancel_at_period_end=self.cancel_at_period_end,
            cancel_at=self.period_end if self.cancel_at_period_end else None,
            canceled_at=self.canceled_at,
            ended_at=self.canceled_at if ended else None,
            trial_start=self.period_start if self.trial_end else None,
            trial_end=self.trial_end,
            livemode=False,
            metadata={"user_id": str(self.user_id)},
            latest_invoice=None,
            next_pending_invoice_item_invoice=None,
            pause_collection=None,
            schedule=None,
        )

    def invoice(
        self, *, paid: bool, at: int, billing_reason: str, retry: bool = False
    ) -> dict[str, Any]:
        if not (retry and self.invoice_id):
            self.invoice_id, self.invoice_attempts = stripe_id(self.rng, "in"), 0
        self.invoice_attempts += 1
        invoice_id = self.invoice_id
        template = example("invoice")["lines"]["data"][0]
        line = copy.deepcopy(template)
        line.update(
            id=stripe_id(self.rng, "il"),
            invoice=invoice_id,
            amount=self.amount,
            subtotal=self.amount,
            description=f"1 x {self.plan} (at ${self.amount / 100:.2f} / month)",
            period={"start": self.period_start, "end": self.period_end},
            parent={
                "type": "subscription_item_details",
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": self.subscription_id,
                    "subscription_item": self.item_id,
                },
            },
        )
        return example(
            "invoice",
            id=invoice_id,
            customer=self.customer_id,
            status="paid" if paid else "open",
            billing_reason=billing_reason,
            amount_due=self.amount,
            amount_paid=self.amount if paid else 0,
            amount_remaining=0 if paid else self.amount,
            attempted=True,
            attempt_count=self.invoice_attempts,
            created=at,
            period_start=self.period_start,
            period_end=self.period_end,
            lines={
                "object": "list",
                "data": [line],
                "has_more": False,
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            parent={
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"subscription": self.subscription_id, "metadata": {}},
            },
            livemode=False,
            metadata={},
        )

    def charge(self, *, refunded: bool = False, disputed: bool = False) -> dict[str, Any]:
        return example(
            "charge",
            id=self.charge_id,
            customer=self.customer_id,
            amount=self.amount,
            amount_captured=self.amount,
            amount_refunded=self.amount if refunded else 0,
            refunded=refunded,
            disputed=disputed,
            captured=True,
            paid=True,
            status="succeeded",
            currency="usd",
            created=self.period_start,
            description=f"Subscription {self.plan}",
            # No card details at all: a demo has none, and Tollgate must not store them.
            payment_method=None,
            payment_method_details={"type": "card", "card": {"brand": "visa"}},
            billing_details={"address": None, "email": None, "name": None, "phone": None},
            source=None,
            receipt_url=None,
            livemode=False,
            metadata={},
        )

    def dispute(self, *, at: int) -> dict[str, Any]:
        # Stripe sends the charge's id; it is expanded here so that the customer is found even
        # when the demo runs without dj-stripe's mirror of the charge (no fake Stripe API).
        return example(
            "dispute",
            id=stripe_id(self.rng, "dp"),
            charge=self.charge(disputed=True),
            amount=self.amount,
            currency="usd",
            created=at,
            reason="fraudulent",
            status="needs_response",
            livemode=False,
            metadata={},
        )
