"""billing/stripe_events.py alone, on Stripe's example objects: no database, no service.
Part of `make mutation`'s test set."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing import stripe_events as se
from billing.stripe_events import Kind
from tests.stripe_fixtures import event, resource

# Every registered type, with the example object Stripe sends in it.
EXAMPLE_OF_TYPE = {
    se.CHECKOUT_SESSION_COMPLETED: "checkout.session",
    se.CUSTOMER_CREATED: "customer",
    se.CUSTOMER_UPDATED: "customer",
    se.SUBSCRIPTION_CREATED: "subscription",
    se.SUBSCRIPTION_UPDATED: "subscription",
    se.SUBSCRIPTION_DELETED: "subscription",
    se.SUBSCRIPTION_PAUSED: "subscription",
    se.SUBSCRIPTION_RESUMED: "subscription",
    se.SUBSCRIPTION_TRIAL_WILL_END: "subscription",
    se.INVOICE_PAID: "invoice",
    se.INVOICE_PAYMENT_FAILED: "invoice",
    se.CHARGE_REFUNDED: "charge",
    se.CHARGE_DISPUTE_CREATED: "dispute",
    se.ENTITLEMENT_SUMMARY_UPDATED: "entitlements.active_entitlement_summary",
}


def subscription(**overrides) -> dict:
    sub = resource(
        "subscription",
        **{"id": "sub_1", "customer": "cus_1", "status": "active", "created": 1_000,
           "trial_end": None, **overrides},
    )  # fmt: skip
    item = sub["items"]["data"][0]
    item.update(current_period_end=2_000)
    item["price"].update(lookup_key="premium", metadata={}, product="prod_1")
    return sub


def invoice(*, subscription_id="sub_1", line_end=3_000, line_subscription="sub_1") -> dict:
    inv = resource("invoice", customer="cus_1", subscription=None)
    inv["parent"] = {"subscription_details": {"subscription": subscription_id}}
    line = resource("line_item")
    line["parent"] = {"subscription_item_details": {"subscription": line_subscription}}
    line["period"] = {"start": 1, "end": line_end}
    inv["lines"] = {"object": "list", "data": [line]}
    return inv


# --- The registry -----------------------------------------------------------------------------


def test_every_registered_type_has_an_example_here():
    assert set(EXAMPLE_OF_TYPE) == set(se.PARSERS)


@pytest.mark.parametrize("event_type", sorted(EXAMPLE_OF_TYPE))
def test_every_registered_type_parses_from_stripes_example(event_type):
    obj = resource(EXAMPLE_OF_TYPE[event_type])
    payload = event(event_type, obj, event_id="evt_1", created=1_700_000_000)
    parsed = se.parse(payload)
    assert parsed.kind == se.PARSERS[event_type].kind
    assert (parsed.event_id, parsed.type, parsed.created) == ("evt_1", event_type, 1_700_000_000)
    assert (parsed.livemode, parsed.account, parsed.malformed) == (False, "", ())
    # (Stripe's entitlement summary has no id of its own.)
    assert (parsed.object_type, parsed.object_id) == (obj["object"], obj.get("id", ""))
    assert parsed.audit_action == se.AUDIT_ACTIONS.get(parsed.kind, "")
    assert parsed.meta["event_type"] == event_type and parsed.meta.get("id") == obj.get("id")
    # What the rest of Tollgate keeps of it survives JSON (parked events, audit meta).
    assert se.from_json(json.loads(json.dumps(se.as_json(parsed)))) == parsed


def test_what_each_kind_says():
    sub = se.parse(event(se.SUBSCRIPTION_DELETED, subscription(), created=5))
    assert sub.kind == Kind.SUBSCRIPTION_DELETED and sub.customer_id == "cus_1"
    assert sub.subscription.stage == "deleted" and sub.subscription.values["deleted"] is True
    assert sub.audit_action == "billing.subscription.deleted" and not sub.reports_failure
    paused = se.parse(event(se.SUBSCRIPTION_PAUSED, subscription(status="paused")))
    assert paused.subscription.stage == "updated" and paused.subscription.status == "paused"
    assert se.parse(event(se.SUBSCRIPTION_TRIAL_WILL_END, subscription())).subscription is None

    failed = se.parse(event(se.INVOICE_PAYMENT_FAILED, invoice(), created=7))
    assert failed.subscription.values == {"status": "past_due", "payment_failed_at": 7}
    assert failed.reports_failure and failed.audit_action == "billing.payment.failed"

    checkout = resource("checkout.session", customer="cus_2", client_reference_id=" 42 ")
    parsed = se.parse(event(se.CHECKOUT_SESSION_COMPLETED, checkout))
    assert (parsed.kind, parsed.customer_id, parsed.user_id) == (
        Kind.CHECKOUT_COMPLETED, "cus_2", 42
    )  # fmt: skip
    by_metadata = dict(checkout, client_reference_id=None, metadata={"user_id": "9"})
    assert se.parse(event(se.CHECKOUT_SESSION_COMPLETED, by_metadata)).user_id == 9

    customer = resource("customer", id="cus_3", metadata={"user_id": "5"})
    parsed = se.parse(event(se.CUSTOMER_UPDATED, customer))
    assert (parsed.kind, parsed.customer_id, parsed.user_id) == (Kind.CUSTOMER_CHANGED, "cus_3", 5)
    assert parsed.audit_action == ""  # not recorded in the trail

    refund = resource("charge", id="ch_1", customer="cus_4", refunded=True)
    parsed = se.parse(event(se.CHARGE_REFUNDED, refund))
    assert (parsed.charge_id, parsed.customer_id, parsed.full_refund) == ("ch_1", "cus_4", True)
    assert parsed.charge_customers == (("ch_1", "cus_4"),)

    summary = resource("entitlements.active_entitlement_summary", customer="cus_5")
    summary["entitlements"]["data"] = [{"lookup_key": "b"}, {"feature": {"lookup_key": "a"}}]
    parsed = se.parse(event(se.ENTITLEMENT_SUMMARY_UPDATED, summary))
    assert (parsed.customer_id, parsed.entitlement_lookup_keys) == ("cus_5", ("a", "b"))


def test_an_unknown_type_keeps_its_customer_charges_and_meta_and_nothing_else():
    intent = resource("payment_intent", id="pi_1", customer="cus_1", latest_charge="ch_1")
    parsed = se.parse(event("payment_intent.succeeded", intent))
    assert (parsed.kind, parsed.audit_action, parsed.subscription) == (Kind.OTHER, "", None)
    assert parsed.customer_id == "cus_1" and parsed.charge_customers == (("ch_1", "cus_1"),)
    assert parsed.meta["id"] == "pi_1" and parsed.malformed == ()


# --- Disputes: the customer through the charge -------------------------------------------------


def test_a_dispute_has_its_customer_only_through_an_expanded_charge():
    by_id = se.parse(event(se.CHARGE_DISPUTE_CREATED, resource("dispute", charge="ch_1")))
    assert (by_id.charge_id, by_id.customer_id, by_id.customer_key) == ("ch_1", "", "")
    assert by_id.charge_customers == () and by_id.reports_failure
    assert by_id.with_customer("cus_9").customer_key == "cus_9"
    charge = resource("charge", id="ch_2", customer={"id": "cus_2", "object": "customer"})
    expanded = se.parse(event(se.CHARGE_DISPUTE_CREATED, resource("dispute", charge=charge)))
    assert (expanded.charge_id, expanded.customer_id) == ("ch_2", "cus_2")
    assert expanded.charge_customers == (("ch_2", "cus_2"),)
    assert expanded.meta["charge"] == "ch_2"  # the expanded charge by its id, nothing of it


def test_a_connected_accounts_customer_key_is_scoped_by_the_account():
    payload = event(se.SUBSCRIPTION_UPDATED, subscription())
    assert se.parse(payload).customer_key == "cus_1"
    payload["account"] = "acct_9"
    parsed = se.parse(payload)
    assert (parsed.customer_id, parsed.customer_key) == ("cus_1", "acct_9/cus_1")
    assert parsed.meta["account"] == "acct_9"


# --- One id-or-object helper ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ref"),
    [("cus_1", "cus_1"), ({"id": "cus_2", "object": "customer"}, "cus_2"), (None, ""),
     ({"id": None}, ""), ({"id": 5}, ""), ({}, ""), (5, ""), ([], ""), ("", "")],
)  # fmt: skip
def test_ref_id_reads_an_id_or_an_expanded_object(value, ref):
    assert se.ref_id(value) == ref


@pytest.mark.parametrize("shape", ["id", "object"])
def test_every_reference_is_read_in_both_shapes(shape):
    def ref(kind, ref_id):
        return ref_id if shape == "id" else resource(kind, id=ref_id)

    sub = subscription(customer=ref("customer", "cus_1"))
    sub["items"]["data"][0]["price"]["product"] = ref("product", "prod_1")
    parsed = se.parse(event(se.SUBSCRIPTION_UPDATED, sub))
    assert parsed.customer_id == parsed.subscription.customer_id == "cus_1"
    assert parsed.subscription.price.product_id == "prod_1"
    inv = invoice()
    inv["customer"] = ref("customer", "cus_1")
    inv["parent"]["subscription_details"]["subscription"] = ref("subscription", "sub_1")
    line = inv["lines"]["data"][0]
    line["parent"]["subscription_item_details"]["subscription"] = ref("subscription", "sub_1")
    change = se.parse(event(se.INVOICE_PAID, inv, created=9)).subscription
    assert (change.subscription_id, change.customer_id) == ("sub_1", "cus_1")
    assert change.values["period_end"] == 3_000
    intent = resource("payment_intent", customer=ref("customer", "cus_1"))
    intent["latest_charge"] = ref("charge", "ch_1")
    assert se.charge_customers(intent) == (("ch_1", "cus_1"),)


# --- Malformed shapes: a clear outcome, never an exception ---------------------------------------


def test_malformed_events_say_what_is_wrong():
    assert se.parse({}).kind == Kind.OTHER
    assert se.parse({}).malformed == ("data.object is not an object",)
    assert se.parse(None).event_id == "" and se.parse([1]).created == 0
    no_id = se.parse(event(se.SUBSCRIPTION_UPDATED, subscription(id=None)))
    assert no_id.subscription is None and no_id.malformed == ("the subscription has no id",)
    no_charge = se.parse(event(se.CHARGE_DISPUTE_CREATED, resource("dispute", charge=None)))
    assert no_charge.malformed == ("the dispute names no charge",) and no_charge.charge_id == ""


def test_numbers_no_timestamp_can_be_read_as_absent():
    # Python's json module reads Infinity and NaN from a body, and int() of them raises.
    payload = event(se.SUBSCRIPTION_UPDATED, subscription(trial_end=float("inf")))
    payload["created"] = float("nan")
    parsed = se.parse(payload)
    assert parsed.created == 0 and parsed.subscription.values["trial_end"] is None


def test_wrong_types_read_as_absent():
    sub = dict(subscription(), customer=7, status=["active"], cancel_at_period_end="yes")
    sub["items"] = [1, 2]
    change = se.parse(event(se.SUBSCRIPTION_UPDATED, sub)).subscription
    assert (change.customer_id, change.status, change.price) == ("", None, None)
    assert change.values["cancel_at_period_end"] is False and change.values["period_end"] is None
    inv = invoice()
    inv["lines"]["data"][0]["period"] = {"end": "3000"}  # text is no timestamp
    inv["lines"]["data"].append(None)
    assert "period_end" not in se.parse(event(se.INVOICE_PAID, inv)).subscription.values
    refund = resource("charge", refunded="yes", amount="100", amount_refunded=100)
    assert se.parse(event(se.CHARGE_REFUNDED, refund)).full_refund is False
    summary = {"object": "entitlements.active_entitlement_summary", "entitlements": [1]}
    assert se.parse(event(se.ENTITLEMENT_SUMMARY_UPDATED, summary)).entitlement_lookup_keys == ()


json_values = st.recursive(
    # NaN is never equal to itself: the round trip below could not compare it (it is read as
    # absent like any other odd number; infinity stays in).
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)
hot_fields = st.sampled_from(
    ["id", "object", "customer", "charge", "items", "lines", "parent", "status", "metadata",
     "subscription", "payments", "latest_charge", "entitlements", "refunded", "amount",
     "client_reference_id", "created", "trial_end"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    event_type=st.sampled_from([*sorted(se.PARSERS), "payment_intent.succeeded", "x"]),
    changes=st.dictionaries(hot_fields, json_values, max_size=5),
    envelope=st.dictionaries(
        st.sampled_from(["id", "type", "created", "livemode", "account", "data"]), json_values
    ),
)
def test_any_shape_parses_without_raising(event_type, changes, envelope):
    obj = resource(EXAMPLE_OF_TYPE.get(event_type, "payment_intent"))
    obj.update(changes)
    payload = {**event(event_type, obj), **envelope}
    parsed = se.parse(payload)
    assert isinstance(parsed.customer_id, str) and isinstance(parsed.customer_key, str)
    assert all(isinstance(note, str) for note in parsed.malformed)
    assert se.from_json(json.loads(json.dumps(se.as_json(parsed)))) == parsed


# --- The pieces, as entitlements and billing use them --------------------------------------------


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("42", 42), (" 7 ", 7), (3, 3), ("1", 1), ("0", None), ("-3", None), (None, None),
     ("x", None), ("4.5", None), ([], None), (True, None), ({"a": 1}, None)],
)  # fmt: skip
def test_parse_user_id_accepts_positive_integers_only(raw, parsed):
    assert se.parse_user_id(raw) == parsed


def test_user_id_from_metadata():
    assert se.user_id_from_metadata({"metadata": {"user_id": "9"}}) == 9
    assert se.user_id_from_metadata({"metadata": None}) is None
    assert se.user_id_from_metadata({}) is None


def test_price_ref_collects_plan_codes_in_order():
    price = resource("price", id="price_1", lookup_key="vip", metadata={"plan_code": "premium"})
    price["product"] = {"id": "prod_9", "metadata": {"plan_code": "enterprise"}}
    ref = se.price_ref(price)
    assert ref == se.PriceRef("price_1", "prod_9", "vip", ("vip", "premium", "enterprise"))
    bare = resource("price", id="price_2", lookup_key=None, metadata=None, product="prod_2")
    assert se.price_ref(bare) == se.PriceRef("price_2", "prod_2", "", ())
    numeric = resource("price", id="price_3", lookup_key=None, metadata={"plan_code": 5})
    numeric["product"] = {"id": "prod_3", "metadata": None}
    assert se.price_ref(numeric).plan_codes == ("5",)


def test_subscription_change_reads_status_period_price_and_ordering_attributes():
    sub = subscription(cancel_at_period_end=True)
    later = dict(sub["items"]["data"][0], current_period_end=2_500, id="si_2")
    sub["items"]["data"].append(later)
    change = se.subscription_change(sub, previous={"status": "incomplete", "metadata": {}})
    assert (change.subscription_id, change.customer_id) == ("sub_1", "cus_1")
    assert change.stage == "updated"
    assert change.values == {
        "status": "active", "cancel_at_period_end": True, "period_end": 2_500, "trial_end": None,
        "sub_created": 1_000,
    }  # fmt: skip
    assert change.status == "active" and change.attributes["status"] == "active"
    assert change.previous == {"status": "incomplete"}
    assert change.price.lookup_key == "premium" and change.price.plan_codes == ("premium",)


def test_subscription_change_of_a_deletion_and_of_a_bare_subscription():
    deleted = se.subscription_change(subscription(customer={"id": "cus_x"}), stage="deleted")
    assert deleted.values["status"] == "canceled" and deleted.values["deleted"] is True
    assert deleted.customer_id == "cus_x"
    bare = se.subscription_change(
        {"id": "sub_2", "status": "trialing", "items": None, "trial_end": 900, "created": True}
    )
    assert bare.values == {
        "status": "trialing", "cancel_at_period_end": False, "period_end": None,
        "trial_end": 900, "sub_created": None,  # a boolean is no timestamp
    }  # fmt: skip
    assert "deleted" not in bare.values and bare.price is None and bare.customer_id == ""
    no_price = subscription()
    no_price["items"]["data"][0]["price"] = "price_1"  # not expanded
    no_price["items"]["data"][0]["current_period_end"] = None
    change = se.subscription_change(no_price)
    assert change.price is None and change.values["period_end"] is None


def test_a_fetched_subscription_is_the_newest_change():
    fetched = se.subscription_fetched(subscription(), fetched_at=77)
    assert (fetched.kind, fetched.event_id, fetched.created) == (
        Kind.SUBSCRIPTION_FETCHED, "fetch:77", 77
    )  # fmt: skip
    assert fetched.subscription.stage == "fetch" and fetched.audit_action == ""
    assert se.subscription_fetched({"id": None}, fetched_at=1).subscription is None


def test_invoice_subscription_id_from_parent_or_legacy_field():
    assert se.invoice_subscription_id(invoice()) == "sub_1"
    legacy = {"parent": None, "subscription": {"id": "sub_old"}}
    assert se.invoice_subscription_id(legacy) == "sub_old"
    assert se.invoice_subscription_id({}) == ""


def test_invoice_period_end_is_the_latest_line_of_that_subscription():
    inv = invoice(line_end=3_000)
    other = dict(inv["lines"]["data"][0], parent=None, subscription="sub_2", period={"end": 9_000})
    legacy = dict(inv["lines"]["data"][0], parent=None, subscription="sub_1", period={"end": 3_500})
    no_end = dict(inv["lines"]["data"][0], period={"end": None})
    inv["lines"]["data"] += [other, legacy, no_end]
    assert se.invoice_period_end(inv, "sub_1") == 3_500
    assert se.invoice_period_end(inv, "sub_2") == 9_000
    assert se.invoice_period_end(inv, "sub_3") is None
    assert se.invoice_period_end({"lines": None}, "sub_1") is None


def test_invoice_change_paid_and_failed():
    paid = se.invoice_change(invoice(), paid=True, created=100)
    assert (paid.subscription_id, paid.customer_id, paid.stage) == ("sub_1", "cus_1", "invoice")
    assert paid.values == {
        "status": "active", "payment_failed_at": None, "last_paid": 100, "period_end": 3_000,
    }  # fmt: skip
    assert paid.status == "active"
    without_lines = invoice(line_subscription="sub_other")
    assert "period_end" not in se.invoice_change(without_lines, paid=True, created=1).values
    failed = se.invoice_change(invoice(), paid=False, created=100)
    assert failed.values == {"status": "past_due", "payment_failed_at": 100}
    assert failed.status == "past_due"
    assert se.invoice_change(invoice(subscription_id=None), paid=True, created=1) is None


@pytest.mark.parametrize(
    ("fields", "full"),
    [
        ({"refunded": True, "amount": 100, "amount_refunded": 0}, True),
        ({"refunded": False, "amount": 100, "amount_refunded": 100}, True),
        ({"refunded": False, "amount": 100, "amount_refunded": 99}, False),
        ({"refunded": False, "amount": 100, "amount_captured": 50, "amount_refunded": 50}, True),
        ({"refunded": False, "amount": 100, "amount_captured": 50, "amount_refunded": 49}, False),
        ({"refunded": False, "amount": 0, "amount_captured": 0, "amount_refunded": 0}, False),
        # Nothing charged: nothing to refund, whatever amount_refunded says.
        ({"refunded": False, "amount": None, "amount_captured": None, "amount_refunded": 5}, False),
        ({"refunded": False, "amount": 1, "amount_captured": None, "amount_refunded": 1}, True),
        ({"refunded": False, "amount": 1, "amount_captured": None, "amount_refunded": 0}, False),
        ({"refunded": False, "amount": 1, "amount_captured": None, "amount_refunded": None}, False),
        (
            {"refunded": None, "amount": None, "amount_captured": None, "amount_refunded": None},
            False,
        ),
    ],
)
def test_is_full_refund(fields, full):
    assert se.is_full_refund(resource("charge", **fields)) is full


def test_summary_lookup_keys_are_sorted_unique_from_either_place():
    summary = {"entitlements": {"data": [
        {"lookup_key": "vip_support"}, {"feature": {"lookup_key": "copy_trading"}},
        {"lookup_key": "vip_support"}, {"lookup_key": None, "feature": None}, {},
    ]}}  # fmt: skip
    assert se.summary_lookup_keys(summary) == ("copy_trading", "vip_support")
    assert se.summary_lookup_keys({"entitlements": None}) == ()


def test_charge_customers_of_each_kind_of_object():
    charge = resource("charge", id="ch_1", customer="cus_1")
    assert se.charge_customers(charge) == (("ch_1", "cus_1"),)
    assert se.charge_customers(dict(charge, customer=None)) == ()
    intent = resource("payment_intent", latest_charge={"id": "ch_2"}, customer="cus_2")
    assert se.charge_customers(intent) == (("ch_2", "cus_2"),)
    dispute = resource("dispute", charge={"id": "ch_3", "customer": "cus_3"})
    assert se.charge_customers(dispute) == (("ch_3", "cus_3"),)
    assert se.charge_customers(resource("dispute", charge="ch_3")) == ()
    inv = resource("invoice", customer="cus_4")
    inv["payments"] = {"data": [{"payment": {"charge": "ch_4"}}, {"payment": None}, 3]}
    assert se.charge_customers(inv) == (("ch_4", "cus_4"),)
    assert se.charge_customers(dict(inv, payments=None)) == ()
    assert se.charge_customers(resource("customer", id="cus_5")) == ()


def test_tracked_attributes_normalise_references_and_items():
    obj = {
        "status": "active",
        "latest_invoice": {"id": "in_1", "object": "invoice"},
        "items": {"object": "list", "data": [
            {"price": {"id": "price_b"}, "quantity": 1, "current_period_end": 9},
            {"price": "price_a", "quantity": 2, "current_period_end": 9},
        ]},
        "metadata": {"ignored": "yes"},
    }  # fmt: skip
    assert se.tracked_attributes(obj) == {
        "status": "active",
        "latest_invoice": "in_1",
        "items": [["price_a", 2, 9], ["price_b", 1, 9]],
    }
    assert se.tracked_attributes({"items": "not a list"}) == {"items": []}
    assert se.tracked_attributes(None) == {}


def test_items_name_a_legacy_plan_when_no_price():
    obj = {"items": {"data": [{"plan": {"id": "plan_old"}, "quantity": 1}]}}
    assert se.tracked_attributes(obj) == {"items": [["plan_old", 1, None]]}


def test_object_meta_reads_prices_and_survives_shapes_stripe_never_sends():
    subscription = resource("subscription")
    price_id = subscription["items"]["data"][0]["price"]["id"]
    assert se.object_meta(subscription)["prices"] == [price_id]
    # Found by the processing fuzz test: each of these failed the whole event before.
    for odd in ([], None, "items", {"data": None}, {"data": {"a": 1}}, {"data": [None, 3, "x"]},
                {"data": [{"price": None, "pricing": "text"}]}):  # fmt: skip
        assert "prices" not in se.object_meta({**subscription, "items": odd})
