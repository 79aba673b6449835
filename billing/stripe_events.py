"""The one reader of Stripe's event payloads (API version 2026-05-27.dahlia).

A verified event dict goes in, a typed, gateway-neutral `BillingEvent` comes out; billing's
services, entitlements and audit read its fields and never index `["data"]["object"]`. Pure:
no database, no Stripe API call, no Django model, so it is tested without a database.

At this API version the billing period lives on subscription items, an invoice names its
subscription under parent.subscription_details, and a dispute names only its charge (an id, or
the charge itself when expanded): a dispute's customer is its expanded charge's, else billing
resolves it from the charges it has stored (billing/charges.py) before it locks.

Shapes Stripe does not send (a list where an object belongs, a null or numeric id, text where a
number belongs) never raise: the field reads as absent, and `BillingEvent.malformed` says what
was wrong, so an odd payload is applied as far as it makes sense instead of dead-lettering.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, TypedDict

# --- Stripe's event types that Tollgate reads ---------------------------------------------------

CHECKOUT_SESSION_COMPLETED = "checkout.session.completed"
CUSTOMER_CREATED = "customer.created"
CUSTOMER_UPDATED = "customer.updated"
SUBSCRIPTION_CREATED = "customer.subscription.created"
SUBSCRIPTION_UPDATED = "customer.subscription.updated"
SUBSCRIPTION_DELETED = "customer.subscription.deleted"
SUBSCRIPTION_PAUSED = "customer.subscription.paused"
SUBSCRIPTION_RESUMED = "customer.subscription.resumed"
SUBSCRIPTION_TRIAL_WILL_END = "customer.subscription.trial_will_end"
INVOICE_PAID = "invoice.paid"
INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
CHARGE_REFUNDED = "charge.refunded"
CHARGE_DISPUTE_CREATED = "charge.dispute.created"
ENTITLEMENT_SUMMARY_UPDATED = "entitlements.active_entitlement_summary.updated"
# Not a Stripe event: a subscription fetched from Stripe's API (billing.tasks.fetch_subscription).
SUBSCRIPTION_FETCHED = "customer.subscription.fetched"


class Kind(StrEnum):
    """What happened, in words of no payment gateway in particular."""

    CHECKOUT_COMPLETED = "checkout.completed"
    CUSTOMER_CHANGED = "customer.changed"
    SUBSCRIPTION_CREATED = "subscription.created"
    SUBSCRIPTION_UPDATED = "subscription.updated"
    SUBSCRIPTION_DELETED = "subscription.deleted"
    SUBSCRIPTION_PAUSED = "subscription.paused"
    SUBSCRIPTION_RESUMED = "subscription.resumed"
    SUBSCRIPTION_TRIAL_WILL_END = "subscription.trial_will_end"
    SUBSCRIPTION_FETCHED = "subscription.fetched"
    INVOICE_PAID = "invoice.paid"
    INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
    PAYMENT_REFUNDED = "payment.refunded"
    PAYMENT_DISPUTED = "payment.disputed"
    ENTITLEMENT_SUMMARY_UPDATED = "entitlement_summary.updated"
    OTHER = "other"


# The audit trail's name of each kind it records (audit/actions.py registers these names, with
# their labels); a kind not listed is not recorded.
AUDIT_ACTIONS: dict[Kind, str] = {
    Kind.CHECKOUT_COMPLETED: "billing.payment.completed",
    Kind.INVOICE_PAID: "billing.invoice.paid",
    Kind.INVOICE_PAYMENT_FAILED: "billing.payment.failed",
    Kind.PAYMENT_REFUNDED: "billing.payment.refunded",
    Kind.PAYMENT_DISPUTED: "billing.payment.disputed",
    Kind.SUBSCRIPTION_CREATED: "billing.subscription.created",
    Kind.SUBSCRIPTION_UPDATED: "billing.subscription.updated",
    Kind.SUBSCRIPTION_DELETED: "billing.subscription.deleted",
    Kind.SUBSCRIPTION_PAUSED: "billing.subscription.paused",
    Kind.SUBSCRIPTION_RESUMED: "billing.subscription.resumed",
    Kind.SUBSCRIPTION_TRIAL_WILL_END: "billing.subscription.trial_will_end",
}
# Kinds whose object reports a failure rather than a success.
FAILURE_KINDS = frozenset({Kind.INVOICE_PAYMENT_FAILED, Kind.PAYMENT_DISPUTED})

# Top-level fields of a Stripe object worth keeping in an audit row (expanded objects give
# their id); audit/meta.py allow-lists them again.
META_KEYS = (
    "id",
    "object",
    "customer",
    "subscription",
    "invoice",
    "charge",
    "payment_intent",
    "amount",
    "amount_due",
    "amount_paid",
    "amount_refunded",
    "amount_total",
    "currency",
    "status",
    "billing_reason",
    "livemode",
)

# Top-level subscription attributes compared against `previous_attributes` to order the events
# of one second (entitlements/ordering.py).
TRACKED_ATTRIBUTES = (
    "status",
    "cancel_at_period_end",
    "cancel_at",
    "canceled_at",
    "ended_at",
    "trial_end",
    "pause_collection",
    "latest_invoice",
    "items",
)


# --- The shapes that come out --------------------------------------------------------------------


@dataclass(frozen=True)
class PriceRef:
    price_id: str
    product_id: str
    lookup_key: str
    # Candidate plan codes in order: price lookup_key, price metadata, product metadata (only
    # when the product is expanded in the payload).
    plan_codes: tuple[str, ...]


@dataclass(frozen=True)
class SubscriptionChange:
    """What one event says about one subscription."""

    subscription_id: str
    customer_id: str
    stage: str  # "created", "updated", "deleted", "invoice", "fetch": its place in a lifecycle
    status: str | None  # the status the event asserts, for ordering inside a second
    values: Mapping[str, object]  # the fields it sets: status, period_end, last_paid, ...
    price: PriceRef | None = None
    attributes: Mapping[str, object] = field(default_factory=dict)  # TRACKED_ATTRIBUTES stated
    previous: Mapping[str, object] = field(default_factory=dict)  # ... and changed from


@dataclass(frozen=True)
class BillingEvent:
    """One payment event as the rest of Tollgate sees it."""

    event_id: str
    type: str  # the gateway's own name of the event, as sent
    kind: Kind
    created: int
    livemode: bool
    account: str = ""  # a connected account's id; "" for the platform's own events
    # The customer the event concerns ("" if none, or a dispute whose charge is not known yet).
    customer_id: str = ""
    charge_id: str = ""  # a refunded or disputed charge
    object_type: str = ""
    object_id: str = ""
    user_id: int | None = None  # the user the payload names (metadata.user_id, checkout's ref)
    subscription: SubscriptionChange | None = None
    # (charge, customer) pairs the object states: how a later dispute finds its customer.
    charge_customers: tuple[tuple[str, str], ...] = ()
    full_refund: bool = False
    entitlement_lookup_keys: tuple[str, ...] = ()
    audit_action: str = ""  # "" when the audit trail does not record the event itself
    reports_failure: bool = False
    meta: Mapping[str, object] = field(default_factory=dict)  # allow-listed fields for audit
    malformed: tuple[str, ...] = ()  # what the payload got wrong, if anything

    @property
    def customer_key(self) -> str:
        """What events are serialized on: the customer, scoped by its connected account (whose
        cus_X is not the platform's cus_X); "" when the customer is not known."""
        if not self.customer_id:
            return ""
        return (f"{self.account}/{self.customer_id}" if self.account else self.customer_id)[:255]

    def with_customer(self, customer_id: str) -> "BillingEvent":
        return replace(self, customer_id=customer_id)


# --- Reading values of any shape -----------------------------------------------------------------


def ref_id(value: object) -> str:
    """A Stripe reference is an id string or the expanded object: its id either way ("" for
    anything else)."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _seconds(value: object) -> int | None:
    # JSON may spell Infinity and NaN, which no timestamp is.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value)


def _amount(value: object) -> int | float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


def parse_user_id(raw: object) -> int | None:
    """A user id written by us into Stripe (metadata, client_reference_id): positive integers."""
    if isinstance(raw, bool | dict | list):
        return None
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def user_id_from_metadata(obj: dict[str, Any]) -> int | None:
    return parse_user_id(_dict(_dict(obj).get("metadata")).get("user_id"))


def price_ref(price: dict[str, Any]) -> PriceRef:
    product = price.get("product")
    codes = [price.get("lookup_key"), _dict(price.get("metadata")).get("plan_code")]
    if isinstance(product, dict):
        codes.append(_dict(product.get("metadata")).get("plan_code"))
    return PriceRef(
        price_id=ref_id(price),
        product_id=ref_id(product),
        lookup_key=_text(price.get("lookup_key")),
        plan_codes=tuple(str(code) for code in codes if code and isinstance(code, str | int)),
    )


def _normalised(name: str, value: object) -> object:
    """A comparable form of one tracked attribute (references by id, items by price/period)."""
    if name == "latest_invoice":
        return value.get("id") if isinstance(value, dict) else value
    if name == "items":
        data = value.get("data") if isinstance(value, dict) else value
        return sorted(
            [
                ref_id(item.get("price")) or ref_id(item.get("plan")) or None,
                item.get("quantity"),
                item.get("current_period_end"),
            ]
            for item in _list(data)
            if isinstance(item, dict)
        )
    return value


def tracked_attributes(obj: object) -> dict[str, object]:
    """The tracked attributes an object (or a previous_attributes dict) states."""
    if not isinstance(obj, dict):
        return {}
    return {name: _normalised(name, obj[name]) for name in TRACKED_ATTRIBUTES if name in obj}


def subscription_change(
    subscription: dict[str, Any], *, stage: str = "updated", previous: dict[str, Any] | None = None
) -> SubscriptionChange:
    """A subscription object (from an event, Stripe's API or dj-stripe's mirror) as a change."""
    items = _list(_dict(subscription.get("items")).get("data"))
    items = [item for item in items if isinstance(item, dict)]
    item_ends = [_seconds(item.get("current_period_end")) for item in items]
    period_ends = [end for end in item_ends if end]
    deleted = stage == "deleted"
    status = "canceled" if deleted else (_text(subscription.get("status")) or None)
    values: dict[str, object] = {
        "status": status,
        "cancel_at_period_end": subscription.get("cancel_at_period_end") is True,
        "period_end": max(period_ends) if period_ends else None,
        "trial_end": _seconds(subscription.get("trial_end")),
        "sub_created": _seconds(subscription.get("created")),
    }
    if deleted:
        values["deleted"] = True
    price = items[0].get("price") if items else None
    return SubscriptionChange(
        subscription_id=ref_id(subscription),
        customer_id=ref_id(subscription.get("customer")),
        stage=stage,
        status=status,
        values=values,
        price=price_ref(price) if isinstance(price, dict) else None,
        attributes=tracked_attributes(subscription),
        previous=tracked_attributes(previous),
    )


def invoice_subscription_id(invoice: dict[str, Any]) -> str:
    details = _dict(_dict(invoice.get("parent")).get("subscription_details"))
    return ref_id(details.get("subscription") or invoice.get("subscription"))


def invoice_period_end(invoice: dict[str, Any], subscription_id: str) -> int | None:
    """The end of the period this invoice pays for, from its subscription lines."""
    ends: list[int] = []
    for line in _list(_dict(invoice.get("lines")).get("data")):
        line = _dict(line)
        details = _dict(_dict(line.get("parent")).get("subscription_item_details"))
        line_subscription = ref_id(details.get("subscription") or line.get("subscription"))
        end = _seconds(_dict(line.get("period")).get("end"))
        if line_subscription == subscription_id and end:
            ends.append(end)
    return max(ends) if ends else None


def invoice_change(
    invoice: dict[str, Any], *, paid: bool, created: int
) -> SubscriptionChange | None:
    """What a paid or failed invoice says about its subscription (None: a one-off invoice)."""
    subscription_id = invoice_subscription_id(invoice)
    if not subscription_id:
        return None
    if paid:
        # last_paid: a refund or dispute older than this payment no longer reverses it.
        # Any: status is read back below as the change's status (str), the rest are ints/None.
        values: dict[str, Any] = {
            "status": "active",
            "payment_failed_at": None,
            "last_paid": created,
        }
        period_end = invoice_period_end(invoice, subscription_id)
        if period_end:
            values["period_end"] = period_end
    else:
        values = {"status": "past_due", "payment_failed_at": created}
    return SubscriptionChange(
        subscription_id=subscription_id,
        customer_id=ref_id(invoice.get("customer")),
        stage="invoice",
        status=values["status"],
        values=values,
    )


def is_full_refund(charge: dict[str, Any]) -> bool:
    amount = _amount(charge.get("amount_captured")) or _amount(charge.get("amount"))
    return charge.get("refunded") is True or (
        amount > 0 and _amount(charge.get("amount_refunded")) >= amount
    )


def summary_lookup_keys(summary: dict[str, Any]) -> tuple[str, ...]:
    keys: set[str] = set()
    for item in _list(_dict(summary.get("entitlements")).get("data")):
        item = _dict(item)
        key = item.get("lookup_key") or _dict(item.get("feature")).get("lookup_key")
        if isinstance(key, str) and key:
            keys.add(key)
    return tuple(sorted(keys))


def charge_customers(obj: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """(charge id, customer id) pairs an object states: a charge, a payment intent's latest
    charge, a dispute's expanded charge, an invoice's expanded charge payments."""
    kind, customer = obj.get("object"), ref_id(obj.get("customer"))
    if kind == "charge":
        pairs = [(ref_id(obj), customer)]
    elif kind == "payment_intent":
        pairs = [(ref_id(obj.get("latest_charge")), customer)]
    elif kind == "dispute" and isinstance(obj.get("charge"), dict):
        pairs = [(ref_id(obj["charge"]), ref_id(obj["charge"].get("customer")))]
    elif kind == "invoice":
        # At this API version an invoice's payments are a list present only when expanded.
        payments = _list(_dict(obj.get("payments")).get("data"))
        pairs = [
            (ref_id(_dict(_dict(item).get("payment")).get("charge")), customer) for item in payments
        ]
    else:
        pairs = []
    return tuple((charge, owner) for charge, owner in pairs if charge and owner)


def object_meta(obj: dict[str, Any]) -> dict[str, object]:
    """The allow-listed fields of an object, expanded references by their id."""
    meta = {
        key: (obj[key].get("id") if isinstance(obj[key], dict) else obj[key])
        for key in META_KEYS
        if key in obj
    }
    # Subscriptions and invoices: which prices were involved.
    prices: set[object] = set()
    for line in _list(_dict(obj.get("items") or obj.get("lines")).get("data")):
        line = _dict(line)
        price = line.get("price") or _dict(line.get("pricing")).get("price_details")
        if isinstance(price, dict) and price.get("id"):
            prices.add(price["id"])
    if prices:
        meta["prices"] = sorted(prices, key=str)
    return meta


# --- The registry of parsers, by Stripe event type ----------------------------------------------


@dataclass(frozen=True)
class Payload:
    """What a parser reads: the event's type, object, created and previous_attributes, and a
    list to note what the payload got wrong."""

    event_type: str
    obj: dict[str, Any]
    created: int
    previous: dict[str, Any]
    notes: list[str]


class EventFields(TypedDict, total=False):
    """The BillingEvent fields a parser reads from its payload (the rest come from the event)."""

    customer_id: str
    user_id: int | None
    subscription: SubscriptionChange
    charge_id: str
    full_refund: bool
    entitlement_lookup_keys: tuple[str, ...]


def _nothing(payload: Payload) -> EventFields:
    return {}


def _subscription(payload: Payload) -> EventFields:
    stage = payload.event_type.rsplit(".", 1)[1]
    stage = stage if stage in {"created", "deleted"} else "updated"
    change = subscription_change(payload.obj, stage=stage, previous=payload.previous)
    if not change.subscription_id:
        payload.notes.append("the subscription has no id")
        return {}
    return {"subscription": change}


def _invoice(payload: Payload) -> EventFields:
    paid = payload.event_type == INVOICE_PAID
    change = invoice_change(payload.obj, paid=paid, created=payload.created)
    return {"subscription": change} if change is not None else {}


def _checkout(payload: Payload) -> EventFields:
    obj = payload.obj
    return {"user_id": parse_user_id(obj.get("client_reference_id")) or user_id_from_metadata(obj)}


def _customer(payload: Payload) -> EventFields:
    return {"customer_id": ref_id(payload.obj)}


def _refund(payload: Payload) -> EventFields:
    return {"charge_id": ref_id(payload.obj), "full_refund": is_full_refund(payload.obj)}


def _dispute(payload: Payload) -> EventFields:
    # A dispute has no customer of its own: its charge's, when the charge is expanded.
    charge = payload.obj.get("charge")
    if not ref_id(charge):
        payload.notes.append("the dispute names no charge")
    return {"charge_id": ref_id(charge), "customer_id": ref_id(_dict(charge).get("customer"))}


def _summary(payload: Payload) -> EventFields:
    return {"entitlement_lookup_keys": summary_lookup_keys(payload.obj), "user_id": None}


@dataclass(frozen=True)
class Parser:
    kind: Kind
    read: Callable[[Payload], EventFields] = _nothing


PARSERS: dict[str, Parser] = {
    CHECKOUT_SESSION_COMPLETED: Parser(Kind.CHECKOUT_COMPLETED, _checkout),
    CUSTOMER_CREATED: Parser(Kind.CUSTOMER_CHANGED, _customer),
    CUSTOMER_UPDATED: Parser(Kind.CUSTOMER_CHANGED, _customer),
    SUBSCRIPTION_CREATED: Parser(Kind.SUBSCRIPTION_CREATED, _subscription),
    SUBSCRIPTION_UPDATED: Parser(Kind.SUBSCRIPTION_UPDATED, _subscription),
    SUBSCRIPTION_DELETED: Parser(Kind.SUBSCRIPTION_DELETED, _subscription),
    SUBSCRIPTION_PAUSED: Parser(Kind.SUBSCRIPTION_PAUSED, _subscription),
    SUBSCRIPTION_RESUMED: Parser(Kind.SUBSCRIPTION_RESUMED, _subscription),
    SUBSCRIPTION_TRIAL_WILL_END: Parser(Kind.SUBSCRIPTION_TRIAL_WILL_END),
    INVOICE_PAID: Parser(Kind.INVOICE_PAID, _invoice),
    INVOICE_PAYMENT_FAILED: Parser(Kind.INVOICE_PAYMENT_FAILED, _invoice),
    CHARGE_REFUNDED: Parser(Kind.PAYMENT_REFUNDED, _refund),
    CHARGE_DISPUTE_CREATED: Parser(Kind.PAYMENT_DISPUTED, _dispute),
    ENTITLEMENT_SUMMARY_UPDATED: Parser(Kind.ENTITLEMENT_SUMMARY_UPDATED, _summary),
}
OTHER = Parser(Kind.OTHER)  # any other type: its customer, charges and meta, nothing more


def parse(event: dict[str, Any]) -> BillingEvent:
    """A verified Stripe event as a BillingEvent; never raises, whatever the shape."""
    event = _dict(event)
    event_type = _text(event.get("type"))
    data = _dict(event.get("data"))
    notes: list[str] = []
    if not isinstance(data.get("object"), dict):
        notes.append("data.object is not an object")
    obj = _dict(data.get("object"))
    created = _seconds(event.get("created")) or 0
    parser = PARSERS.get(event_type, OTHER)
    payload = Payload(event_type, obj, created, _dict(data.get("previous_attributes")), notes)
    # A customer's own object is the customer; other objects name theirs.
    customer = obj if obj.get("object") == "customer" else obj.get("customer")
    fields: EventFields = {
        "customer_id": ref_id(customer),
        "user_id": user_id_from_metadata(obj),
        **parser.read(payload),
    }
    return _event(event, event_type, parser.kind, created, obj, fields, notes)


def _event(
    event: dict[str, Any],
    event_type: str,
    kind: Kind,
    created: int,
    obj: dict[str, Any],
    fields: EventFields,
    notes: list[str],
) -> BillingEvent:
    account = _text(event.get("account"))[:255]
    meta = {**object_meta(obj), "event_type": event_type}
    if account:
        meta["account"] = account
    return BillingEvent(
        event_id=_text(event.get("id")),
        type=event_type,
        kind=kind,
        created=created,
        livemode=event.get("livemode") is True,
        account=account,
        object_type=_text(obj.get("object")),
        object_id=ref_id(obj),
        charge_customers=charge_customers(obj),
        audit_action=AUDIT_ACTIONS.get(kind, ""),
        reports_failure=kind in FAILURE_KINDS,
        meta=meta,
        malformed=tuple(notes),
        **fields,
    )


def subscription_fetched(subscription: dict[str, Any], *, fetched_at: int) -> BillingEvent:
    """Stripe's own copy of a subscription, fetched at `fetched_at`, as the newest change."""
    subscription = _dict(subscription)
    change = subscription_change(subscription, stage="fetch")
    return BillingEvent(
        event_id=f"fetch:{fetched_at}",
        type=SUBSCRIPTION_FETCHED,
        kind=Kind.SUBSCRIPTION_FETCHED,
        created=fetched_at,
        livemode=subscription.get("livemode") is True,
        customer_id=change.customer_id,
        object_type=_text(subscription.get("object")),
        object_id=change.subscription_id,
        subscription=change if change.subscription_id else None,
    )


# --- Keeping a BillingEvent (entitlements parks events for customers it cannot place yet) -------


def as_json(billing_event: BillingEvent) -> dict[str, Any]:
    """A JSON-serialisable form of a BillingEvent (from_json reads it back)."""
    return asdict(billing_event)


def from_json(data: dict[str, Any]) -> BillingEvent:
    """A BillingEvent kept with as_json; a raw Stripe event (kept before events were parsed
    once, in billing) is parsed."""
    data = _dict(data)
    if data.get("object") == "event":
        return parse(data)
    change = data.get("subscription")
    if isinstance(change, dict):
        price = change.get("price")
        change = SubscriptionChange(
            **{**change, "price": PriceRef(**{**price, "plan_codes": tuple(price["plan_codes"])})}
            if isinstance(price, dict)
            else change
        )
    return BillingEvent(
        **{
            **data,
            "kind": Kind(data["kind"]),
            "subscription": change,
            "charge_customers": tuple(tuple(pair) for pair in data.get("charge_customers") or ()),
            "entitlement_lookup_keys": tuple(data.get("entitlement_lookup_keys") or ()),
            "malformed": tuple(data.get("malformed") or ()),
        }
    )
