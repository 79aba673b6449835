"""dj-stripe's mirror in a real browser, as `make run` shows it: the simulator hands its objects
to the fake Stripe API, delivers its events, and the admin lists the customer and subscription
that dj-stripe fetched from the fake, linked to the demo user."""

import re

from django.core.management import call_command
from django_otp.plugins.otp_totp.models import TOTPDevice
from djstripe.models import Customer
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD


def test_admin_opens_a_mirrored_customer_and_its_subscription(
    page, shot, sign_in, live_server, fake_stripe, django_user_model
):
    call_command(
        "stripe_simulate", "checkout", "--base-url", live_server.url,
        "--stripe-api", fake_stripe.url, "--seed", "11", verbosity=0,
    )  # fmt: skip
    customer = Customer.objects.get(subscriber__username="demo-checkout-1")
    subscription = customer.subscriptions.get()
    admin = django_user_model.objects.create_superuser(
        username="ada", email="ada@example.com", password=PASSWORD
    )
    sign_in(admin, TOTPDevice.objects.create(user=admin, name="phone", confirmed=True))

    page.goto("/admin/djstripe/customer/")
    open_row(page, customer.id)
    page.wait_for_url(re.compile(rf"/admin/djstripe/customer/{customer.djstripe_id}/change/"))
    expect(page.locator("#content")).to_contain_text(customer.id)
    expect(page.locator("#content")).to_contain_text(fake_stripe.get(customer.id)["email"])
    expect(page.locator("#content")).to_contain_text("demo-checkout-1")  # the subscriber
    shot("mirrored-customer")

    page.goto("/admin/djstripe/subscription/")
    open_row(page, subscription.id)
    page.wait_for_url(re.compile(rf"/admin/djstripe/subscription/{subscription.djstripe_id}/"))
    expect(page.locator("#content")).to_contain_text(subscription.id)
    expect(page.locator("#content")).to_contain_text(customer.id)
    shot("mirrored-subscription")


def open_row(page, stripe_id: str) -> None:
    """Click the change link of the changelist row showing this Stripe id."""
    page.locator("#result_list tbody tr", has_text=stripe_id).locator("th a").click()
