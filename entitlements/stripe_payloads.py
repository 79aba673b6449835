"""Read what entitlements need out of Stripe event payloads (API version 2026-05-27.dahlia).

Pure functions over the verified event dict: no database, no Stripe API call. At this API
version the billing period lives on subscription items and an invoice names its subscription
under parent.subscription_details.
"""

from dataclasses import dataclass, field

# Subscription statuses that give access (past_due only through the plan's grace days,
# trialing until the trial's end). incomplete, incomplete_expired, unpaid, paused and canceled
# give none.
LIVE_STATUSES = frozenset({"active", "trialing", "past_due"})


@dataclass(frozen=True)
class PriceRef:
    price_id: str
    product_id: str
    lookup_key: str
    # Candidate plan codes in the order: price lookup_key, price metadata, product
    # metadata (only when the product is expanded in the payload).
    plan_codes: tuple[str, ...]


@dataclass
class Update:
    """What one event says about one subscription: field name -> value."""

    subscription_id: str
    customer_id: str
    values: dict = field(default_factory=dict)
    price: PriceRef | None = None
    status: str | None = None  # the status the event asserts, for ordering inside a second


def _id(value) -> str:
    """Stripe references are either an id string or an expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _seconds(value) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def user_id_from_metadata(obj: dict) -> int | None:
    metadata = obj.get("metadata") or {}
    return parse_user_id(metadata.get("user_id"))


def parse_user_id(raw) -> int | None:
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def price_ref(price: dict) -> PriceRef:
    product = price.get("product")
    codes = [price.get("lookup_key"), (price.get("metadata") or {}).get("plan_code")]
    if isinstance(product, dict):
        codes.append((product.get("metadata") or {}).get("plan_code"))
    return PriceRef(
        price_id=_id(price),
        product_id=_id(product),
        lookup_key=price.get("lookup_key") or "",
        plan_codes=tuple(str(code) for code in codes if code),
    )


def subscription_update(subscription: dict, *, deleted: bool = False) -> Update:
    items = (subscription.get("items") or {}).get("data") or []
    period_ends = [item["current_period_end"] for item in items if item.get("current_period_end")]
    status = "canceled" if deleted else subscription.get("status")
    update = Update(
        subscription_id=_id(subscription),
        customer_id=_id(subscription.get("customer")),
        values={
            "status": status,
            "cancel_at_period_end": bool(subscription.get("cancel_at_period_end")),
            "period_end": max(period_ends) if period_ends else None,
            "trial_end": _seconds(subscription.get("trial_end")),
            "sub_created": _seconds(subscription.get("created")),
        },
        status=status,
    )
    if deleted:
        update.values["deleted"] = True
    if items and isinstance(items[0].get("price"), dict):
        update.price = price_ref(items[0]["price"])
    return update


def invoice_subscription_id(invoice: dict) -> str:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return _id(details.get("subscription") or invoice.get("subscription"))


def invoice_period_end(invoice: dict, subscription_id: str) -> int | None:
    """The end of the period this invoice pays for, from its subscription lines."""
    ends = []
    for line in (invoice.get("lines") or {}).get("data") or []:
        details = (line.get("parent") or {}).get("subscription_item_details") or {}
        line_subscription = _id(details.get("subscription") or line.get("subscription"))
        if line_subscription == subscription_id and (line.get("period") or {}).get("end"):
            ends.append(int(line["period"]["end"]))
    return max(ends) if ends else None


def invoice_update(invoice: dict, *, paid: bool, created: int) -> Update | None:
    subscription_id = invoice_subscription_id(invoice)
    if not subscription_id:
        return None  # a one-off invoice grants nothing
    update = Update(subscription_id=subscription_id, customer_id=_id(invoice.get("customer")))
    if paid:
        # last_paid: a refund or dispute older than this payment no longer reverses it.
        update.values = {"status": "active", "payment_failed_at": None, "last_paid": created}
        period_end = invoice_period_end(invoice, subscription_id)
        if period_end:
            update.values["period_end"] = period_end
    else:
        update.values = {"status": "past_due", "payment_failed_at": created}
    update.status = update.values["status"]
    return update


def is_full_refund(charge: dict) -> bool:
    amount = charge.get("amount_captured") or charge.get("amount") or 0
    return bool(charge.get("refunded")) or (
        amount > 0 and (charge.get("amount_refunded") or 0) >= amount
    )


def summary_lookup_keys(summary: dict) -> list[str]:
    data = (summary.get("entitlements") or {}).get("data") or []
    keys = {
        item.get("lookup_key") or (item.get("feature") or {}).get("lookup_key") for item in data
    }
    return sorted(key for key in keys if key)


def customer_id_of(obj: dict) -> str:
    return _id(obj.get("customer"))


def charge_id_of(obj: dict) -> str:
    return _id(obj.get("charge"))


def charge_customers(obj: dict) -> list[tuple[str, str]]:
    """(charge id, customer id) pairs an object states: a charge, a payment intent's latest
    charge, a dispute's expanded charge, an invoice's expanded charge payments."""
    kind, customer = obj.get("object"), customer_id_of(obj)
    if kind == "charge":
        pairs = [(_id(obj), customer)]
    elif kind == "payment_intent":
        pairs = [(_id(obj.get("latest_charge")), customer)]
    elif kind == "dispute" and isinstance(obj.get("charge"), dict):
        pairs = [(_id(obj["charge"]), customer_id_of(obj["charge"]))]
    elif kind == "invoice":
        # At this API version an invoice's payments are a list that is present only when expanded.
        payments = (obj.get("payments") or {}).get("data") or []
        pairs = [(_id((item.get("payment") or {}).get("charge")), customer) for item in payments]
    else:
        pairs = []
    return [(charge, owner) for charge, owner in pairs if charge and owner]
