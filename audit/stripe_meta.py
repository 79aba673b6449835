"""The few fields of a Stripe object worth keeping in an audit row (then allow-listed again)."""

from audit.meta import STRIPE_OBJECT_KEYS


def _id_of(value):
    return value.get("id") if isinstance(value, dict) else value


def stripe_object_meta(obj: dict) -> dict:
    meta = {key: _id_of(obj[key]) for key in STRIPE_OBJECT_KEYS if key in obj}
    # Subscriptions and invoices: which prices and products were involved.
    lines = (obj.get("items") or obj.get("lines") or {}).get("data") or []
    prices = []
    for line in lines:
        price = line.get("price") or (line.get("pricing") or {}).get("price_details") or {}
        if isinstance(price, dict) and price.get("id"):
            prices.append(price["id"])
    if prices:
        meta["prices"] = sorted(set(prices))
    return meta
