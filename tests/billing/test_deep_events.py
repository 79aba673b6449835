"""A signed event nested deep is refused or stored, processed and shown: never a 500.

Stripe's own events nest a handful of levels. A deeper one (still correctly signed) used to be
stored and then made its admin page a 500 (RecursionError while displaying the payload).
"""

import json

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import services
from billing.models import StripeEvent
from tests.billing.conftest import customer_event
from tests.stripe_fixtures import signed

pytestmark = pytest.mark.django_db
MARK = "__nested__"


def nested_event(depth: int) -> tuple[dict, str]:
    """A customer event whose metadata holds `depth` nested objects (built as text: Python's
    own json.dumps gives up long before the depths tried here)."""
    payload = customer_event()
    payload["data"]["object"]["metadata"] = MARK
    nested = '{"a":' * depth + '"bottom"' + "}" * depth
    return payload, json.dumps(payload).replace(json.dumps(MARK), nested)


def deliver_body(client, endpoint, body: str):
    body, signature = signed(body, endpoint.secret)
    return client.post(
        endpoint.path, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


def stored_and_applied(payload: dict) -> StripeEvent:
    """The event is in the inbox and applies (the Celery task's work, run here)."""
    stored = StripeEvent.objects.get(event_id=payload["id"])
    services.event_apply(event_id=stored.event_id, customer_id=stored.customer_id)
    stored.refresh_from_db()
    assert stored.status == StripeEvent.Status.APPLIED
    return stored


def test_an_event_900_deep_is_applied_and_its_admin_page_shows_it(endpoint, admin_client):
    # How deep the webhook view can parse depends on the stack beneath it (shallower under
    # gunicorn than under pytest), so the event is stored the way the view stores it.
    payload, body = nested_event(900)
    services.event_receive(
        event=json.loads(body),
        endpoint_id=endpoint.model.id,
        delivery=services.Delivery(headers={}, body=body, remote_ip="127.0.0.1"),
    )
    stored = stored_and_applied(payload)
    page = admin_client.get(reverse("admin:billing_stripeevent_change", args=[stored.pk]))
    assert page.status_code == 200
    assert admin_client.get(reverse("admin:billing_stripeevent_changelist")).status_code == 200
    assert payload["id"].encode() in page.content and b"bottom" in page.content
    listing = admin_client.get(reverse("admin:billing_stripeevent_changelist"))
    assert listing.status_code == 200 and payload["id"].encode() in listing.content


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(depth=st.integers(min_value=1, max_value=20_000))
def test_no_nesting_depth_gets_a_server_error(client, endpoint, admin_client, depth):
    payload, body = nested_event(depth)
    response = deliver_body(client, endpoint, body)
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:
        # Deeper than Python can parse here: refused as malformed, before anything is stored.
        assert response.json()["type"].endswith("/webhook-malformed-event")
        return
    stored = stored_and_applied(payload)
    page = admin_client.get(reverse("admin:billing_stripeevent_change", args=[stored.pk]))
    assert page.status_code == 200
    assert admin_client.get(reverse("admin:billing_stripeevent_changelist")).status_code == 200
