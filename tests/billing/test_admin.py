"""The event inbox's admin page links each event to what dj-stripe's mirror made of it."""

from django.urls import reverse
from djstripe.models import Customer, Event

from billing.models import StripeEvent
from tests.billing.conftest import customer_event, deliver


def test_a_mirrored_event_links_to_djstripes_event_and_customer(
    client, admin_client, endpoint, fake_stripe, django_capture_on_commit_callbacks
):
    payload = customer_event("customer.updated", customer_id="cus_linked")
    fake_stripe.record_event(payload)
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, endpoint, payload)
    row = StripeEvent.objects.get(event_id=payload["id"])

    page = admin_client.get(reverse("admin:billing_stripeevent_change", args=[row.pk]))

    assert page.status_code == 200
    event_url = reverse("admin:djstripe_event_change", args=[Event.objects.get(id=row.event_id).pk])
    customer_url = reverse(
        "admin:djstripe_customer_change", args=[Customer.objects.get(id="cus_linked").pk]
    )
    html = page.content.decode()
    assert f'<a href="{event_url}">event {row.event_id}</a>' in html
    assert f'<a href="{customer_url}">customer cus_linked</a>' in html


def test_an_event_without_mirror_says_so(client, admin_client, endpoint, settings):
    settings.BILLING_STRIPE_MIRROR_ENABLED = False
    payload = customer_event("customer.updated", customer_id="cus_unmirrored")
    deliver(client, endpoint, payload)
    row = StripeEvent.objects.get(event_id=payload["id"])

    page = admin_client.get(reverse("admin:billing_stripeevent_change", args=[row.pk]))

    assert "not mirrored" in page.content.decode()
