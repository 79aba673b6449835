"""The few fields of a Stripe object worth keeping in an audit row (then allow-listed again)."""

from audit.meta import STRIPE_OBJECT_KEYS


def _id_of(value):
    return value.get("id") if isinstance(value, dict) else value


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def stripe_object_meta(obj: dict) -> dict:
    meta = {key: _id_of(obj[key]) for key in STRIPE_OBJECT_KEYS if key in obj}
    # Subscriptions and invoices: which prices and products were involved.
    # Only the shapes Stripe documents are read: anything else (a list where an object belongs,
    # a null line) records no prices instead of failing the whole event's processing.
    lines = _dict(obj.get("items") or obj.get("lines")).get("data")
    prices = []
    for line in lines if isinstance(lines, list) else []:
        line = _dict(line)
        price = line.get("price") or _dict(line.get("pricing")).get("price_details")
        if isinstance(price, dict) and price.get("id"):
            prices.append(price["id"])
    if prices:
        meta["prices"] = sorted(set(prices))
    return meta
