"""entitlements/stripe_payloads.py alone, on Stripe's example objects: no database, no service.
Part of `make mutation`'s test set."""

import pytest

from entitlements import stripe_payloads as payloads
from tests.stripe_fixtures import resource


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


def test_live_statuses_are_the_ones_that_give_access():
    assert frozenset({"active", "trialing", "past_due"}) == payloads.LIVE_STATUSES


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("42", 42), (" 7 ", 7), (3, 3), ("1", 1), ("0", None), ("-3", None), (None, None),
     ("x", None), ("4.5", None), ([], None)],
)  # fmt: skip
def test_parse_user_id_accepts_positive_integers_only(raw, parsed):
    assert payloads.parse_user_id(raw) == parsed


def test_user_id_from_metadata():
    assert payloads.user_id_from_metadata({"metadata": {"user_id": "9"}}) == 9
    assert payloads.user_id_from_metadata({"metadata": None}) is None
    assert payloads.user_id_from_metadata({}) is None


def test_price_ref_collects_plan_codes_in_order():
    price = resource("price", id="price_1", lookup_key="vip", metadata={"plan_code": "premium"})
    price["product"] = {"id": "prod_9", "metadata": {"plan_code": "enterprise"}}
    ref = payloads.price_ref(price)
    assert ref == payloads.PriceRef("price_1", "prod_9", "vip", ("vip", "premium", "enterprise"))
    bare = resource("price", id="price_2", lookup_key=None, metadata=None, product="prod_2")
    assert payloads.price_ref(bare) == payloads.PriceRef("price_2", "prod_2", "", ())
    numeric = resource("price", id="price_3", lookup_key=None, metadata={"plan_code": 5})
    numeric["product"] = {"id": "prod_3", "metadata": None}
    assert payloads.price_ref(numeric).plan_codes == ("5",)


def test_subscription_update_reads_status_period_and_price():
    sub = subscription(cancel_at_period_end=True)
    later = dict(sub["items"]["data"][0], current_period_end=2_500, id="si_2")
    sub["items"]["data"].append(later)
    update = payloads.subscription_update(sub)
    assert (update.subscription_id, update.customer_id) == ("sub_1", "cus_1")
    assert update.values == {
        "status": "active", "cancel_at_period_end": True, "period_end": 2_500, "trial_end": None,
        "sub_created": 1_000,
    }  # fmt: skip
    assert update.status == "active"
    assert update.price.lookup_key == "premium" and update.price.plan_codes == ("premium",)


def test_subscription_update_of_a_deletion_and_of_a_bare_subscription():
    deleted = payloads.subscription_update(subscription(customer={"id": "cus_x"}), deleted=True)
    assert deleted.values["status"] == "canceled" and deleted.values["deleted"] is True
    assert deleted.customer_id == "cus_x"
    bare = payloads.subscription_update(
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
    update = payloads.subscription_update(no_price)
    assert update.price is None and update.values["period_end"] is None


def test_invoice_subscription_id_from_parent_or_legacy_field():
    assert payloads.invoice_subscription_id(invoice()) == "sub_1"
    legacy = {"parent": None, "subscription": {"id": "sub_old"}}
    assert payloads.invoice_subscription_id(legacy) == "sub_old"
    assert payloads.invoice_subscription_id({}) == ""


def test_invoice_period_end_is_the_latest_line_of_that_subscription():
    inv = invoice(line_end=3_000)
    other = dict(inv["lines"]["data"][0], parent=None, subscription="sub_2", period={"end": 9_000})
    legacy = dict(inv["lines"]["data"][0], parent=None, subscription="sub_1", period={"end": 3_500})
    no_end = dict(inv["lines"]["data"][0], period={"end": None})
    inv["lines"]["data"] += [other, legacy, no_end]
    assert payloads.invoice_period_end(inv, "sub_1") == 3_500
    assert payloads.invoice_period_end(inv, "sub_2") == 9_000
    assert payloads.invoice_period_end(inv, "sub_3") is None
    assert payloads.invoice_period_end({"lines": None}, "sub_1") is None


def test_invoice_update_paid_and_failed():
    paid = payloads.invoice_update(invoice(), paid=True, created=100)
    assert (paid.subscription_id, paid.customer_id) == ("sub_1", "cus_1")
    assert paid.values == {
        "status": "active", "payment_failed_at": None, "last_paid": 100, "period_end": 3_000,
    }  # fmt: skip
    assert paid.status == "active"
    without_lines = invoice(line_subscription="sub_other")
    assert "period_end" not in payloads.invoice_update(without_lines, paid=True, created=1).values
    failed = payloads.invoice_update(invoice(), paid=False, created=100)
    assert failed.values == {"status": "past_due", "payment_failed_at": 100}
    assert failed.status == "past_due"
    assert payloads.invoice_update(invoice(subscription_id=None), paid=True, created=1) is None


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
    assert payloads.is_full_refund(resource("charge", **fields)) is full


def test_summary_lookup_keys_are_sorted_unique_from_either_place():
    summary = {"entitlements": {"data": [
        {"lookup_key": "vip_support"}, {"feature": {"lookup_key": "copy_trading"}},
        {"lookup_key": "vip_support"}, {"lookup_key": None, "feature": None}, {},
    ]}}  # fmt: skip
    assert payloads.summary_lookup_keys(summary) == ["copy_trading", "vip_support"]
    assert payloads.summary_lookup_keys({"entitlements": None}) == []


def test_ids_of_references_either_strings_or_expanded_objects():
    assert payloads.customer_id_of({"customer": {"id": "cus_2"}}) == "cus_2"
    assert payloads.customer_id_of({"customer": None}) == ""
    assert payloads.charge_id_of({"charge": "ch_1"}) == "ch_1"
    assert payloads.charge_id_of({"charge": {"id": None}}) == ""


def test_charge_customers_of_each_kind_of_object():
    charge = resource("charge", id="ch_1", customer="cus_1")
    assert payloads.charge_customers(charge) == [("ch_1", "cus_1")]
    assert payloads.charge_customers(dict(charge, customer=None)) == []
    intent = resource("payment_intent", latest_charge={"id": "ch_2"}, customer="cus_2")
    assert payloads.charge_customers(intent) == [("ch_2", "cus_2")]
    dispute = resource("dispute", charge={"id": "ch_3", "customer": "cus_3"})
    assert payloads.charge_customers(dispute) == [("ch_3", "cus_3")]
    assert payloads.charge_customers(resource("dispute", charge="ch_3")) == []
    inv = resource("invoice", customer="cus_4")
    inv["payments"] = {"data": [{"payment": {"charge": "ch_4"}}, {"payment": None}]}
    assert payloads.charge_customers(inv) == [("ch_4", "cus_4")]
    assert payloads.charge_customers(dict(inv, payments=None)) == []
    assert payloads.charge_customers(resource("customer", id="cus_5")) == []
