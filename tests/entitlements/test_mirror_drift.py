"""`reconcile_entitlements --mirror`: where dj-stripe's mirrored subscriptions and our stored
subscription state disagree. The mirror is filled by dj-stripe itself from the fake Stripe API
(billing/simulator/fake_api.py), as the mirror sync does."""

from io import StringIO

import pytest
import stripe
from django.conf import settings
from django.core.management import CommandError, call_command
from djstripe.models import Subscription

from tests.entitlements.conftest import DAY, T0, deliver

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("reconcile_entitlements", "--mirror", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def mirror(fake_stripe, payload: dict) -> None:
    """Stripe's API answers the subscription as the event left it; dj-stripe fetches it into
    its tables, as the mirror sync does."""
    fake_stripe.record_event(payload)
    subscription_id = payload["data"]["object"]["id"]
    fetched = stripe.Subscription.retrieve(subscription_id, api_key=settings.STRIPE_SECRET_KEY)
    Subscription.sync_from_stripe_data(fetched, api_key=settings.STRIPE_SECRET_KEY)


@pytest.fixture
def subscribed(make_user, customer, fake_stripe):
    user = make_user()
    deliver(customer.checkout(user))
    created = customer.subscription(plan="premium", period_end=T0 + 30 * DAY)
    deliver(created)
    mirror(fake_stripe, created)
    return customer


def test_mirror_and_state_agreeing_report_nothing(subscribed):
    assert run().splitlines() == ["0 subscription(s) disagree with dj-stripe's mirror."]


def test_status_plan_and_period_end_the_mirror_knows_and_we_do_not_are_reported(
    subscribed, fake_stripe
):
    # Stripe moved on (an upgrade, a later period, then a cancellation) in events never applied.
    later = subscribed.subscription(
        "updated", created=T0 + 10, status="canceled", plan="vip", period_end=T0 + 60 * DAY
    )
    mirror(fake_stripe, later)

    lines = run().splitlines()
    sub = subscribed.subscription_id
    assert lines == [
        f"{sub}: status: mirror canceled, ours active",
        f"{sub}: plan: mirror vip, ours premium",
        f"{sub}: period end: mirror {_day(T0 + 60 * DAY)}, ours {_day(T0 + 30 * DAY)}",
        "1 subscription(s) disagree with dj-stripe's mirror.",
    ]
    # Applying the events that were missing brings both sides together again.
    deliver(later)
    assert run().splitlines() == ["0 subscription(s) disagree with dj-stripe's mirror."]


def test_a_subscription_missing_from_either_side_is_reported(subscribed, make_user, customer):
    from tests.entitlements.conftest import Customer

    unmirrored = Customer()
    deliver(unmirrored.checkout(make_user()))
    deliver(unmirrored.subscription())

    assert run().splitlines() == [
        f"{unmirrored.subscription_id}: not in dj-stripe's mirror",
        "1 subscription(s) disagree with dj-stripe's mirror.",
    ]
    assert run("--customer", subscribed.customer_id).splitlines()[-1].startswith("0 ")


def test_mirror_drift_is_reported_never_fixed(db):
    with pytest.raises(CommandError, match="only reports"):
        run("--fix")


def _day(seconds: int) -> str:
    from datetime import UTC, datetime

    return f"{datetime.fromtimestamp(seconds, tz=UTC):%Y-%m-%d %H:%M}"
