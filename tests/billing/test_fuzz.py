"""Properties: whatever arrives at the webhook endpoint, the answer is never a 5xx; whatever
signed event is accepted, processing ends it applied (or parked) or as a dead letter with its
error, never half way.

The first test's bodies range from random bytes through JSON of any shape to correctly signed
Stripe-shaped events with hostile field values; headers are random, absent, or a real
signature. The second mutates Stripe's example objects and applies them for real.
"""

import json

import hypothesis
import pytest
from django.test import TestCase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import StripeEvent
from tests.stripe_fixtures import event, resource, signed, unique_id

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {
        "object": st.sampled_from(["event", "customer"]),
        "id": st.text(max_size=30).map(lambda s: "evt_" + s) | json_scalars,
        "type": st.text(max_size=40) | json_scalars,
        "created": st.integers(min_value=-(2**70), max_value=2**70) | json_scalars,
        "livemode": st.booleans() | json_scalars,
        "data": st.fixed_dictionaries(
            {"object": st.dictionaries(st.text(max_size=10), json_values, max_size=5)}
        )
        | json_values,
    }
)
bodies = (
    st.binary(max_size=300).map(lambda b: ("raw", b))
    | json_values.map(lambda v: ("json", json.dumps(v).encode()))
    | event_like.map(lambda v: ("event", json.dumps(v).encode()))
)
headers = st.dictionaries(
    st.sampled_from(
        [
            "HTTP_STRIPE_SIGNATURE",
            "HTTP_X_DJSTRIPE_WEBHOOK_SECRET",
            "CONTENT_TYPE",
            "HTTP_X_REQUEST_ID",
        ]
    ),
    st.text(max_size=60),
    max_size=3,
)


@settings(
    max_examples=2000,  # "thousands of arbitrary bodies and headers", about 15 s
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=bodies,
    extra=headers,
    sign=st.booleans(),
    method=st.sampled_from(["post", "put"]),
    content_type=st.sampled_from(["application/json", "text/plain", "multipart/form-data"]),
)
def test_no_input_yields_a_server_error(client, endpoint, body, extra, sign, method, content_type):
    kind, raw = body
    if sign:
        _, extra["HTTP_STRIPE_SIGNATURE"] = signed(raw.decode("utf-8", "replace"), endpoint.secret)
        if kind == "raw":
            raw = raw.decode("utf-8", "replace").encode()
    response = getattr(client, method)(endpoint.path, data=raw, content_type=content_type, **extra)
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/problem+json"


# Processing, fuzzed: Stripe's example objects of every kind that entitlements act on, set up so
# that they reach a real decision (a linked customer, a plan price, invoice lines, an expanded
# dispute charge), then mutated field by field (dropped, nulled, retyped), signed, posted to the
# real view and applied by the task on commit.
FUZZ_CUSTOMERS = ("cus_fuzz1", "cus_fuzz2")
FUZZ_KINDS = {
    "customer.subscription.created": "subscription",
    "customer.subscription.updated": "subscription",
    "customer.subscription.deleted": "subscription",
    "invoice.paid": "invoice",
    "invoice.payment_failed": "invoice",
    "charge.refunded": "charge",
    "charge.dispute.created": "dispute",
    "checkout.session.completed": "checkout.session",
    "customer.updated": "customer",
    "entitlements.active_entitlement_summary.updated": "entitlements.active_entitlement_summary",
}
# Where processing looks: mutated more often than the rest of the object.
FUZZ_HOT_PATHS = {
    "subscription": ["customer", "status", "items", "items.data", "items.data.0",
                     "items.data.0.price", "items.data.0.price.lookup_key",
                     "items.data.0.price.metadata", "items.data.0.price.product",
                     "items.data.0.current_period_end", "cancel_at_period_end", "id", "metadata"],
    "invoice": ["customer", "parent", "parent.subscription_details",
                "parent.subscription_details.subscription", "lines", "lines.data", "lines.data.0",
                "lines.data.0.period", "lines.data.0.period.end", "lines.data.0.parent",
                "subscription", "payments"],
    "charge": ["customer", "refunded", "amount", "amount_captured", "amount_refunded", "id"],
    "dispute": ["charge", "charge.customer", "charge.id", "id"],
    "checkout.session": ["customer", "client_reference_id", "metadata", "metadata.user_id"],
    "customer": ["id", "metadata", "metadata.user_id"],
    "entitlements.active_entitlement_summary": ["customer", "entitlements", "entitlements.data",
                                                "entitlements.data.0.lookup_key"],
}  # fmt: skip
fuzz_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.just([])
    | st.just({})
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.sampled_from(["id", "data", "object"]), st.text(max_size=5), max_size=2)
)


def _fuzz_base(kind: str, *, customer: str, user_id: int, plan: str, status: str) -> dict:
    """A Stripe example object that, unmutated, reaches a real decision."""
    sub_id = f"sub_{customer}"
    obj = resource(kind)
    if kind == "subscription":
        obj.update(id=sub_id, customer=customer, status=status, cancel_at_period_end=False)
        item = obj["items"]["data"][0]
        item["current_period_end"] = 4_000_000_000
        item["price"].update(lookup_key=plan, metadata={"plan_code": plan})
    elif kind == "invoice":
        obj.update(customer=customer, subscription=None)
        details = {"subscription": sub_id, "metadata": {}}
        obj["parent"] = {"type": "subscription_details", "subscription_details": details}
        line = resource("line_item")
        line["parent"] = {"subscription_item_details": {"subscription": sub_id}}
        line["period"] = {"start": 1, "end": 4_000_000_000}
        obj["lines"] = {"object": "list", "data": [line], "has_more": False}
    elif kind == "charge":
        obj.update(customer=customer, refunded=True, amount_refunded=obj["amount"])
    elif kind == "dispute":
        obj["charge"] = resource("charge", customer=customer)
    elif kind == "checkout.session":
        obj.update(customer=customer, client_reference_id=str(user_id))
    elif kind == "customer":
        obj.update(id=customer, metadata={"user_id": str(user_id)})
    else:
        obj["customer"] = customer
        granted = {"object": "entitlements.active_entitlement", "lookup_key": "copy_trading"}
        obj["entitlements"] = {"object": "list", "data": [granted]}
    return obj


def _paths(value, prefix=(), depth=0):
    if depth > 4:
        return
    children = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in children:
        yield (*prefix, key)
        if isinstance(child, dict | list):
            yield from _paths(child, (*prefix, key), depth + 1)


def _mutate(obj: dict, path: tuple, operation: str, value) -> None:
    parent = obj
    for key in path[:-1]:
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            return  # an earlier mutation removed the way there
    key = path[-1]
    if isinstance(parent, list):
        if not (isinstance(key, int) and key < len(parent)):
            return
    elif not isinstance(parent, dict) or key not in parent:
        return
    if operation == "drop":
        del parent[key]
    else:
        parent[key] = None if operation == "null" else value


def _hot(path: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in path.split("."))


@settings(
    max_examples=250,  # about 10 s: each example is a delivery applied through every receiver
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    event_type=st.sampled_from(sorted(FUZZ_KINDS)),
    customer=st.sampled_from(FUZZ_CUSTOMERS),
    plan=st.sampled_from(["premium", "vip", "free", "no-such-plan"]),
    status=st.sampled_from(["active", "trialing", "past_due", "canceled", "unpaid", "paused"]),
    created=st.integers(min_value=1_700_000_000, max_value=1_700_000_100),
)
def test_every_accepted_event_is_applied_parked_or_a_dead_letter(
    client, endpoint, fuzz_user, settings, data, event_type, customer, plan, status, created
):
    settings.BILLING_EVENT_MAX_RETRIES = 1  # a failure reaches the dead letters quickly
    kind = FUZZ_KINDS[event_type]
    obj = _fuzz_base(kind, customer=customer, user_id=fuzz_user.pk, plan=plan, status=status)
    hot = [_hot(path) for path in FUZZ_HOT_PATHS[kind]]
    mutations = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(hot) | st.sampled_from(list(_paths(obj))),
                st.sampled_from(["drop", "null", "retype"]),
                fuzz_values,
            ),
            max_size=4,
        )
    )
    for path, operation, value in mutations:
        _mutate(obj, path, operation, value)
    payload = event(event_type, obj, event_id=unique_id("evt_fuzz"), created=created)
    body, header = signed(payload, endpoint.secret)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            endpoint.path, data=body, content_type="application/json",
            HTTP_STRIPE_SIGNATURE=header,
        )  # fmt: skip
    assert response.status_code < 500, response.content
    if response.status_code != 200:
        assert response["Content-Type"] == "application/problem+json"
        hypothesis.event(f"refused {response.status_code}")
        return
    assert response.json()["status"] == "accepted"
    row = StripeEvent.objects.get(event_id=payload["id"])
    # Never left half way: applied (parked events are applied too), or dead with its error.
    assert row.status in ("applied", "dead"), (row.status, row.last_error)
    hypothesis.event(f"{event_type}: {row.status}")  # --hypothesis-show-statistics
    if row.status == "dead":
        assert row.last_error and row.attempts == 2
        FUZZ_DEAD_LETTERS.append(row.last_error)
    else:
        assert row.last_error == "" and row.attempts == 1


FUZZ_DEAD_LETTERS: list[str] = []


@pytest.fixture
def fuzz_user(django_user_model):
    return django_user_model.objects.create_user(username="fuzz", email="fuzz@example.com")
