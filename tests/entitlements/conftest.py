"""Builders of realistic Stripe lifecycles (Stripe's own example objects) and delivery through
billing's real signal, the integration point between billing and entitlements."""

import itertools
import time
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import Group
from django.db import transaction

from billing.charges import billing_event_resolve
from billing.signals import stripe_event_applying, stripe_event_processed
from entitlements import signals
from tests.stripe_fixtures import event, resource, unique_id

DAY = 86400
# Start of today (UTC): lifecycles are built relative to it so that their periods are current;
# expectations are computed from T0, never from the wall clock.
T0 = int(time.time()) // DAY * DAY
_user_numbers = itertools.count(1)


def deliver(payload: dict) -> None:
    """What billing's task does: read the event (its customer resolved, its charges learnt) and
    send its two signals (the event's own record, then its effects) inside the transaction
    applying the event; unlike the task, a duplicate delivery is sent again."""
    with transaction.atomic():
        billing_event = billing_event_resolve(payload=payload)
        stripe_event_applying.send(sender=None, billing_event=billing_event)
        stripe_event_processed.send(sender=None, billing_event=billing_event)


def price(*, lookup_key=None, metadata=None, product=None, price_id=None) -> dict:
    obj = resource(
        "price", id=price_id or unique_id("price"), lookup_key=lookup_key, metadata=metadata or {}
    )
    if product is not None:
        obj["product"] = product
    return obj


@dataclass
class Customer:
    """One Stripe customer with one subscription, producing that subscription's events."""

    customer_id: str = field(default_factory=lambda: unique_id("cus"))
    subscription_id: str = field(default_factory=lambda: unique_id("sub"))

    def checkout(self, user, *, created=T0, via="client_reference_id") -> dict:
        session = resource(
            "checkout.session",
            id=unique_id("cs"),
            customer=self.customer_id,
            subscription=self.subscription_id,
            mode="subscription",
            status="complete",
            payment_status="paid",
            client_reference_id=str(user.pk) if via == "client_reference_id" else None,
            metadata={"user_id": str(user.pk)} if via == "metadata" else {},
        )
        return event("checkout.session.completed", session, created=created)

    def subscription(
        self,
        kind="created",
        *,
        created=T0,
        status="active",
        plan="premium",
        period_end=T0 + 30 * DAY,
        cancel_at_period_end=False,
        price_obj=None,
        metadata=None,
        event_id=None,
        trial_end=None,
        sub_created=T0,
        previous_attributes=None,
    ) -> dict:
        # Stripe's example is a skeleton with every timestamp set; a live subscription has no
        # cancellation, end or pause unless the scenario says so.
        sub = resource(
            "subscription",
            id=self.subscription_id,
            customer=self.customer_id,
            status=status,
            cancel_at_period_end=cancel_at_period_end,
            metadata=metadata or {},
            created=sub_created,
            trial_end=trial_end,
            trial_start=sub_created if trial_end else None,
            cancel_at=None,
            canceled_at=created if kind == "deleted" or status == "canceled" else None,
            ended_at=created if kind == "deleted" else None,
            pause_collection=None,
        )
        item = sub["items"]["data"][0]
        item["subscription"] = self.subscription_id
        # A plan's price keeps its id, as in Stripe: previous_attributes can name it.
        item["price"] = price_obj or price(lookup_key=plan, price_id=f"price_{plan}")
        item["current_period_start"] = period_end - 30 * DAY if period_end else None
        item["current_period_end"] = period_end
        sub["items"]["data"] = [item]
        return event(
            f"customer.subscription.{kind}",
            sub,
            created=created,
            event_id=event_id,
            previous_attributes=previous_attributes,
        )

    def invoice(self, kind="paid", *, created=T0, period_end=T0 + 30 * DAY, event_id=None):
        invoice = resource(
            "invoice",
            id=unique_id("in"),
            customer=self.customer_id,
            status="paid" if kind == "paid" else "open",
            billing_reason="subscription_cycle",
        )
        invoice["parent"] = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": self.subscription_id},
        }
        line = invoice["lines"]["data"][0]
        line["period"] = {"start": period_end - 30 * DAY, "end": period_end}
        line["parent"]["subscription_item_details"]["subscription"] = self.subscription_id
        line["parent"]["type"] = "subscription_item_details"
        invoice["lines"]["data"] = [line]
        return event(f"invoice.{kind}", invoice, created=created, event_id=event_id)

    def refund(self, *, created=T0, full=True) -> dict:
        charge = resource(
            "charge",
            id=unique_id("ch"),
            customer=self.customer_id,
            amount=2000,
            amount_captured=2000,
            amount_refunded=2000 if full else 500,
            refunded=full,
        )
        return event("charge.refunded", charge, created=created)

    def charge(self, charge_id, *, kind="succeeded", created=T0) -> dict:
        charge = resource(
            "charge",
            id=charge_id,
            customer=self.customer_id,
            amount=2000,
            amount_captured=2000,
            amount_refunded=0,
            refunded=False,
            status="succeeded",
        )
        return event(f"charge.{kind}", charge, created=created)

    def dispute(self, charge_id, *, created=T0) -> dict:
        """Stripe's dispute names its charge by id only, never the customer."""
        dispute = resource("dispute", id=unique_id("dp"), charge=charge_id, status="needs_response")
        return event("charge.dispute.created", dispute, created=created)

    def summary(self, lookup_keys, *, created=T0) -> dict:
        obj = resource("entitlements.active_entitlement_summary", customer=self.customer_id)
        template = obj["entitlements"]["data"][0]
        obj["entitlements"]["data"] = [
            {**template, "id": unique_id("ent"), "lookup_key": key, "livemode": False}
            for key in lookup_keys
        ]
        obj["entitlements"]["has_more"] = False
        obj["livemode"] = False
        return event("entitlements.active_entitlement_summary.updated", obj, created=created)


@pytest.fixture
def make_user(django_user_model):
    def make(password=None, **extra):
        # No password unless a test signs in with one: hashing is slow and most users never log in.
        number = next(_user_numbers)
        return django_user_model.objects.create_user(
            username=extra.pop("username", f"trader{number}"),
            email=extra.pop("email", f"trader{number}@example.com"),
            password=password,
            **extra,
        )

    return make


@pytest.fixture
def customer():
    return Customer()


@pytest.fixture
def sent():
    """Every entitlements signal sent during the test, as (name, kwargs)."""
    received = []
    names = ["granted", "extended", "revoked", "lapsed"]
    handlers = []
    for name in names:

        def handler(sender, _name=name, **kwargs):
            received.append((_name, kwargs))

        getattr(signals, f"entitlement_{name}").connect(handler, weak=False)
        handlers.append((name, handler))

    def plan_handler(sender, **kwargs):
        received.append(("plan_changed", kwargs))

    signals.plan_changed.connect(plan_handler, weak=False)
    yield received
    for name, handler in handlers:
        getattr(signals, f"entitlement_{name}").disconnect(handler)
    signals.plan_changed.disconnect(plan_handler)


@pytest.fixture
def support_user(make_user):
    user = make_user(is_staff=True)
    user.groups.add(Group.objects.get(name="Support"))
    return user


@pytest.fixture
def finance_user(make_user):
    """A finance-like user: staff with only the view permissions of entitlements."""
    from django.contrib.auth.models import Permission

    user = make_user(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="entitlements", codename__startswith="view_"
        )
    )
    return user
