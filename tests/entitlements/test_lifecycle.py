"""Every lifecycle path of issue 4, delivered through billing's real signal."""

from datetime import UTC, datetime

import pytest

from config.context import Actor
from entitlements.access import has_feature
from entitlements.models import CustomerLink, Entitlement, ParkedEvent, UnknownPrice
from entitlements.services import entitlement_grant_manual
from tests.entitlements.conftest import DAY, T0, deliver, price

pytestmark = pytest.mark.django_db

PREMIUM = {"signals_basic", "signals_premium", "advanced_analytics"}
VIP = PREMIUM | {"vip_support", "copy_trading"}


def when(seconds):
    return datetime.fromtimestamp(seconds, tz=UTC)


def live(user):
    rows = Entitlement.objects.filter(user=user, revoked_at__isnull=True)
    return {row.feature.lookup_key: row.expires_at for row in rows.select_related("feature")}


def test_checkout_links_and_subscription_grants_until_period_end_plus_grace(
    make_user, customer, sent
):
    user = make_user()
    deliver(customer.checkout(user))
    assert CustomerLink.objects.get(stripe_customer_id=customer.customer_id).user == user
    created = customer.subscription(period_end=T0 + 30 * DAY)
    deliver(created)

    assert live(user) == {key: when(T0 + 33 * DAY) for key in PREMIUM}  # premium grace: 3 days
    row = Entitlement.objects.get(user=user, feature__lookup_key="signals_premium")
    assert (row.source, row.stripe_subscription_id, row.plan.code) == (
        "stripe",
        customer.subscription_id,
        "premium",
    )
    grants = [kwargs for name, kwargs in sent if name == "granted"]
    assert len(grants) == 3
    assert grants[0]["actor"] == Actor(kind="stripe")
    assert grants[0]["source_event_id"] == created["id"]
    assert grants[0]["reason"] == "customer.subscription.created"
    assert has_feature(user, "signals_premium") and not has_feature(user, "copy_trading")


def test_trialing_grants_and_unknown_period_uses_default_duration(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription(status="trialing", period_end=None, created=T0))
    assert live(user) == {key: when(T0 + 30 * DAY) for key in PREMIUM}


def test_incomplete_subscription_grants_nothing(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription(status="incomplete"))
    assert live(user) == {}


def test_plan_change_swaps_features(make_user, customer, sent):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription(plan="vip", created=T0))
    assert set(live(user)) == VIP
    deliver(customer.subscription("updated", plan="premium", created=T0 + 60))
    assert set(live(user)) == PREMIUM
    revoked = Entitlement.objects.filter(user=user, revoked_at__isnull=False)
    assert {row.feature.lookup_key for row in revoked} == {"vip_support", "copy_trading"}
    assert {row.plan.code for row in Entitlement.objects.filter(user=user, revoked_at=None)} == {
        "premium"
    }
    assert [name for name, _ in sent].count("revoked") == 2


def test_cancel_at_period_end_keeps_access_until_the_period_ends(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription(period_end=T0 + 20 * DAY))
    deliver(customer.subscription("updated", created=T0 + 5, period_end=T0 + 20 * DAY,
                                  cancel_at_period_end=True))  # fmt: skip
    assert live(user) == {key: when(T0 + 20 * DAY) for key in PREMIUM}
    # Access ends at the period's end by itself, with no job having run.
    user.refresh_from_db()
    assert not has_feature(user, "signals_premium", now=when(T0 + 20 * DAY + 1))
    assert has_feature(user, "signals_premium", now=when(T0 + 20 * DAY - 1))


def test_invoice_paid_extends_on_renewal(make_user, customer, sent):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription(period_end=T0 + 30 * DAY))
    deliver(customer.invoice("paid", created=T0 + 30 * DAY, period_end=T0 + 60 * DAY))
    assert live(user) == {key: when(T0 + 63 * DAY) for key in PREMIUM}
    extended = [kwargs for name, kwargs in sent if name == "extended"]
    assert len(extended) == 3
    assert extended[0]["previous_expires_at"] == when(T0 + 33 * DAY)
    assert Entitlement.objects.filter(user=user).count() == 3  # extended in place


def test_payment_failure_keeps_access_through_grace_then_lapses(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription(period_end=T0 + 30 * DAY))
    failed_at = T0 + 30 * DAY
    deliver(customer.invoice("payment_failed", created=failed_at))
    assert live(user) == {key: when(failed_at + 3 * DAY) for key in PREMIUM}
    deliver(customer.subscription("updated", status="past_due", created=failed_at + 10,
                                  period_end=T0 + 60 * DAY))  # fmt: skip
    assert live(user) == {key: when(failed_at + 3 * DAY) for key in PREMIUM}
    assert has_feature(user, "signals_basic", now=when(failed_at + 3 * DAY - 1))
    user = type(user).objects.get(pk=user.pk)
    assert not has_feature(user, "signals_basic", now=when(failed_at + 3 * DAY + 1))
    # Paying later restores the full period.
    deliver(customer.invoice("paid", created=failed_at + DAY, period_end=T0 + 60 * DAY))
    assert live(user) == {key: when(T0 + 63 * DAY) for key in PREMIUM}


def test_a_late_payment_failure_from_before_the_grant_lapses_it_without_failing(
    make_user, customer
):
    # Found by the processing fuzz test: the grant started now, the failure (delivered late,
    # from 10 days ago) moves its end before its start; the row used to break its CHECK
    # constraint and the event became a dead letter instead of ending the access.
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription(period_end=T0 + 30 * DAY))
    failed_at = T0 - 10 * DAY
    deliver(customer.invoice("payment_failed", created=failed_at))
    rows = Entitlement.objects.filter(user=user, revoked_at__isnull=True)
    assert {row.expires_at for row in rows} == {when(failed_at + 3 * DAY)}
    assert all(row.starts_at < row.expires_at for row in rows)
    assert not has_feature(user, "signals_basic")


def test_deletion_revokes_stripe_grants_and_leaves_manual_grants(make_user, customer, sent):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription())
    entitlement_grant_manual(user=user, granted_by=None, actor=Actor(), reason="goodwill",
                             feature_key="signals_premium")  # fmt: skip
    deleted = customer.subscription("deleted", status="canceled", created=T0 + 99)
    deliver(deleted)
    remaining = Entitlement.objects.filter(user=user, revoked_at__isnull=True)
    assert [(row.feature.lookup_key, row.source) for row in remaining] == [
        ("signals_premium", "manual")
    ]
    revocations = [kwargs for name, kwargs in sent if name == "revoked"]
    assert {kwargs["entitlement"].source for kwargs in revocations} == {"stripe"}
    assert all(kwargs["source_event_id"] == deleted["id"] for kwargs in revocations)
    # A later update cannot resurrect a deleted subscription.
    deliver(customer.subscription("updated", created=T0 + 200))
    assert Entitlement.objects.filter(user=user, revoked_at=None, source="stripe").count() == 0


def test_full_refund_revokes_partial_does_not(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription())
    deliver(customer.refund(full=False, created=T0 + 10))
    assert set(live(user)) == PREMIUM
    deliver(customer.refund(full=True, created=T0 + 20))
    assert live(user) == {}


def test_refund_revocation_can_be_turned_off(make_user, customer, settings):
    settings.ENTITLEMENTS_REVOKE_ON_REFUND = False
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription())
    deliver(customer.refund(full=True, created=T0 + 20))
    assert set(live(user)) == PREMIUM


def test_dispute_revokes_via_the_charge_customer(make_user, customer):
    from djstripe.models import Charge
    from djstripe.models import Customer as DjCustomer

    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription())
    from tests.stripe_fixtures import event, resource, unique_id

    charge_id = unique_id("ch")
    dj_customer = DjCustomer.objects.create(id=customer.customer_id, livemode=False)
    Charge.objects.create(
        id=charge_id, customer=dj_customer, amount=20,
        currency="usd", status="succeeded", livemode=False,
    )  # fmt: skip
    dispute = resource("dispute", id=unique_id("dp"), charge=charge_id)
    deliver(event("charge.dispute.created", dispute, created=T0 + 30))
    assert live(user) == {}


def test_plan_from_price_metadata_then_product_metadata(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription(price_obj=price(metadata={"plan_code": "vip"})))
    assert set(live(user)) == VIP
    other = type(customer)()
    deliver(other.checkout(user))
    product = {"id": "prod_free_test", "object": "product", "metadata": {"plan_code": "free"}}
    deliver(other.subscription(price_obj=price(product=product)))
    assert {
        row.feature.lookup_key
        for row in Entitlement.objects.filter(stripe_subscription_id=other.subscription_id)
    } == {"signals_basic"}


def test_unknown_price_is_flagged_and_grants_nothing(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    mystery = price(lookup_key="gold_monthly")
    deliver(customer.subscription(price_obj=mystery))
    deliver(customer.subscription("updated", price_obj=mystery, created=T0 + 1))
    flag = UnknownPrice.objects.get(price_id=mystery["id"])
    assert (flag.lookup_key, flag.occurrences) == ("gold_monthly", 2)
    assert live(user) == {}


def test_events_of_an_unlinked_customer_are_parked_then_applied(make_user, customer):
    user = make_user()
    deliver(customer.subscription(created=T0))
    deliver(customer.invoice("paid", created=T0 + 5, period_end=T0 + 40 * DAY))
    assert ParkedEvent.objects.filter(stripe_customer_id=customer.customer_id).count() == 2
    assert Entitlement.objects.count() == 0
    deliver(customer.checkout(user, created=T0 + 10, via="metadata"))
    assert live(user) == {key: when(T0 + 43 * DAY) for key in PREMIUM}
    assert not ParkedEvent.objects.filter(applied_at__isnull=True).exists()


def test_subscription_metadata_user_id_links(make_user, customer):
    user = make_user()
    deliver(customer.subscription(metadata={"user_id": str(user.pk)}))
    assert set(live(user)) == PREMIUM
    assert CustomerLink.objects.get(stripe_customer_id=customer.customer_id).learnt_from == (
        "metadata.user_id"
    )


def test_djstripe_subscriber_is_the_last_fallback(make_user, customer):
    from djstripe.models import Customer as DjCustomer

    user = make_user()
    DjCustomer.objects.create(id=customer.customer_id, livemode=False, subscriber=user)
    deliver(customer.subscription())
    assert set(live(user)) == PREMIUM


def test_active_entitlement_summary_is_authoritative(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription(plan="premium"))
    deliver(customer.summary(["signals_basic", "copy_trading", "not_a_feature"], created=T0 + 5))
    assert set(live(user)) == {"signals_basic", "copy_trading"}
    # An older summary never overrides a newer one.
    deliver(customer.summary(["vip_support"], created=T0 + 1))
    assert set(live(user)) == {"signals_basic", "copy_trading"}


def test_customer_metadata_user_id_links_and_applies_parked_events(make_user, customer):
    from tests.stripe_fixtures import event, resource

    user = make_user()
    deliver(customer.subscription(created=T0))
    assert live(user) == {}
    stripe_customer = resource("customer", id=customer.customer_id,
                               metadata={"user_id": str(user.pk)})  # fmt: skip
    deliver(event("customer.updated", stripe_customer, created=T0 + 1))
    assert set(live(user)) == PREMIUM


def test_one_off_invoice_grants_nothing(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    one_off = customer.invoice("paid")
    one_off["data"]["object"]["parent"] = None
    one_off["data"]["object"]["lines"]["data"][0]["parent"]["subscription_item_details"] = None
    deliver(one_off)
    assert live(user) == {}
