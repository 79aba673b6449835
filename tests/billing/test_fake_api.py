"""The fake Stripe API (billing/simulator/fake_api.py), called through the stripe SDK as
dj-stripe calls it: it answers the latest state of what it was handed, and Stripe's own 404
for anything else."""

import json
import urllib.request

import pytest
import stripe

from billing.simulator.fake_api import CONTROL_PATH, FakeStripe
from tests.stripe_fixtures import event, resource

KEY = "sk_test_FakeKey0123456789abcdefXYZ"


@pytest.fixture
def fake():
    with FakeStripe() as fake:
        yield fake


def client(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient(KEY, base_addresses={"api": fake.url}, max_network_retries=0)


def subscription_event(status: str, *, created: int, event_type="customer.subscription.updated"):
    sub = resource("subscription", id="sub_fake1", customer="cus_fake1", status=status)
    return event(event_type, sub, created=created)


def test_an_id_never_sent_gets_stripes_own_404(fake):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client(fake).v1.customers.retrieve("cus_x")

    error = raised.value
    assert error.http_status == 404
    assert error.json_body == {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": "No such customer: 'cus_x'",
            "param": "id",
        }
    }
    assert error.code == "resource_missing"


def test_an_object_of_another_kind_is_not_found_under_the_wrong_collection(fake):
    fake.record_event(subscription_event("active", created=100))
    with pytest.raises(stripe.InvalidRequestError, match="No such invoice: 'sub_fake1'"):
        client(fake).v1.invoices.retrieve("sub_fake1")


def test_answers_the_latest_state_whatever_the_order_events_were_handed_in(fake):
    fake.record_event(subscription_event("past_due", created=200))
    fake.record_event(subscription_event("active", created=100, event_type="x.created"))

    sub = client(fake).v1.subscriptions.retrieve("sub_fake1")
    assert (sub.id, sub.status, sub.customer) == ("sub_fake1", "past_due", "cus_fake1")
    # Expanded objects inside the event are known on their own too, with their ids.
    item_id = sub["items"]["data"][0]["id"]
    assert client(fake).v1.subscription_items.retrieve(item_id).id == item_id


def test_objects_only_referred_to_are_answered_with_their_id(fake):
    fake.record_event(subscription_event("active", created=100))

    customer = client(fake).v1.customers.retrieve("cus_fake1")
    assert (customer.object, customer.id, customer.discount) == ("customer", "cus_fake1", None)
    # A customer sent in full replaces the stand-in, whatever the order.
    fake.put(resource("customer", id="cus_fake1", email="real@example.com", discount=None))
    assert client(fake).v1.customers.retrieve("cus_fake1").email == "real@example.com"


def test_lists_filter_on_top_level_fields(fake):
    fake.record_event(subscription_event("active", created=100))
    other = resource("subscription", id="sub_fake2", customer="cus_other", status="active")
    fake.record_event(event("customer.subscription.created", other, created=100))

    listed = client(fake).v1.subscriptions.list(params={"customer": "cus_fake1"})
    assert [sub.id for sub in listed.data] == ["sub_fake1"]


def test_another_process_hands_events_over_http(fake):
    body = json.dumps([subscription_event("trialing", created=5)]).encode()
    request = urllib.request.Request(fake.url + CONTROL_PATH, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read()) == {"recorded": 1}
    assert client(fake).v1.subscriptions.retrieve("sub_fake1").status == "trialing"


def test_outage_modes_answer_stripes_error_types(fake):
    fake.mode = "429"
    with pytest.raises(stripe.RateLimitError):
        client(fake).v1.customers.retrieve("cus_x")
    fake.mode = "500"
    with pytest.raises(stripe.APIError):
        client(fake).v1.customers.retrieve("cus_x")
