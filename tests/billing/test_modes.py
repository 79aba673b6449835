"""Live and test mode never mix, and a connected account's customer is never the platform's.

Through the real view and the real apply path: a delivery is signed, stored, acknowledged and
applied (or deliberately not) exactly as in production."""

import pytest

from audit.models import AuditEvent
from billing.models import StripeEvent
from billing.stripe_events import parse
from entitlements.models import Entitlement, SubscriptionState
from tests.billing.conftest import deliver, metric
from tests.entitlements.conftest import Customer
from tests.entitlements.conftest import deliver as apply_directly

pytestmark = pytest.mark.django_db

PREMIUM = {"signals_basic", "signals_premium", "advanced_analytics"}


@pytest.fixture
def make_user(django_user_model):
    return lambda: django_user_model.objects.create_user(username=f"u{Customer().customer_id}")


def live_features(user) -> set:
    rows = Entitlement.objects.filter(user=user, revoked_at__isnull=True)
    return set(rows.values_list("feature__lookup_key", flat=True))


@pytest.mark.parametrize("deployment_live", [True, False])
def test_an_event_of_the_other_mode_is_stored_acknowledged_audited_never_applied(
    client, endpoint, settings, make_user, deployment_live, django_capture_on_commit_callbacks
):
    settings.STRIPE_LIVE_MODE = deployment_live
    user = make_user()
    customer = Customer()
    checkout = customer.checkout(user)
    subscription = customer.subscription()
    for payload in (checkout, subscription):
        payload["livemode"] = not deployment_live
    mode = "test" if deployment_live else "live"
    counted = metric("tollgate_billing_events_other_mode_total", livemode=mode)
    with django_capture_on_commit_callbacks(execute=True):
        for payload in (checkout, subscription):
            assert deliver(client, endpoint, payload).status_code == 200
    rows = StripeEvent.objects.filter(event_id__in=[checkout["id"], subscription["id"]])
    assert set(rows.values_list("status", flat=True)) == {"other_mode"}
    assert live_features(user) == set()
    assert not SubscriptionState.objects.exists()
    assert metric("tollgate_billing_events_other_mode_total", livemode=mode) == counted + 2
    audited = AuditEvent.objects.filter(action="billing.event.other_mode")
    assert set(audited.values_list("stripe_event_id", flat=True)) == {
        checkout["id"], subscription["id"]
    }  # fmt: skip
    # A duplicate delivery later changes nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, endpoint, subscription).status_code == 200
    assert audited.count() == 2


def test_the_deployments_own_mode_is_applied(
    client, endpoint, settings, make_user, django_capture_on_commit_callbacks
):
    settings.STRIPE_LIVE_MODE = True
    user = make_user()
    customer = Customer()
    with django_capture_on_commit_callbacks(execute=True):
        for payload in (customer.checkout(user), customer.subscription()):
            payload["livemode"] = True
            deliver(client, endpoint, payload)
    assert live_features(user) == PREMIUM


def test_a_connected_accounts_customer_is_not_the_platforms_customer_of_the_same_id(
    client, endpoint, make_user, django_capture_on_commit_callbacks
):
    user = make_user()
    platform = Customer()
    apply_directly(platform.checkout(user))
    apply_directly(platform.subscription())
    assert live_features(user) == PREMIUM
    # The same customer and subscription ids, in a connected account's events.
    ended = platform.subscription("deleted", status="canceled")
    ended["account"] = "acct_connected1"
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, endpoint, ended).status_code == 200
    row = StripeEvent.objects.get(event_id=ended["id"])
    assert row.account == "acct_connected1"
    assert row.customer_id == f"acct_connected1/{platform.customer_id}"
    assert row.status == "applied"  # recorded and audited ...
    assert live_features(user) == PREMIUM  # ... but the platform's customer keeps its plan
    audited = AuditEvent.objects.get(stripe_event_id=ended["id"])
    assert audited.meta["account"] == "acct_connected1"


def test_serialization_keys_scope_connected_accounts():
    payload = Customer().subscription()
    platform_key = parse(payload).customer_key
    payload["account"] = "acct_9"
    assert parse(payload).customer_key == f"acct_9/{platform_key}"
