"""The pure decisions of entitlements/subscriptions.py: `state_merge` (field by field, newest
event wins) and `desired_for_state` (which features until when, from the stored state alone).

Only the catalogue is read from the database (any database: `make mutation` runs these on
SQLite, `make test` on PostgreSQL).
"""

from datetime import UTC, datetime, timedelta

import pytest

from entitlements.models import CustomerSummary, Plan, SubscriptionState
from entitlements.subscriptions import Wanted, desired_for_state, state_merge

T0 = 1_800_000_000
DAY = 86400
PREMIUM = {"signals_basic", "signals_premium", "advanced_analytics"}


def when(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def state(created: int = T0, event_id: str = "evt_1", **values) -> SubscriptionState:
    row = SubscriptionState(stripe_subscription_id="sub_1", stripe_customer_id="cus_1")
    state_merge(row, {"status": "active", "plan_code": "premium", **values}, (created, event_id))
    return row


# state_merge: no database


def test_merge_of_a_new_field_records_value_and_version():
    row = SubscriptionState(fields={})
    assert state_merge(row, {"status": "active", "period_end": None}, (10, "evt_a")) is True
    assert row.fields == {"status": ["active", 10, "evt_a"], "period_end": [None, 10, "evt_a"]}
    assert (row.last_event_created, row.last_event_id) == (10, "evt_a")


def test_merge_keeps_each_fields_newest_value_by_created_then_id():
    row = SubscriptionState(fields={})
    state_merge(row, {"status": "active", "plan_code": "premium"}, (10, "evt_b"))
    # Older by time: changes nothing, not even the last event.
    assert state_merge(row, {"status": "canceled"}, (9, "evt_z")) is False
    assert row.value("status") == "active"
    assert (row.last_event_created, row.last_event_id) == (10, "evt_b")
    # Same second, smaller id: older. Same second, larger id: newer.
    assert state_merge(row, {"status": "past_due"}, (10, "evt_a")) is False
    assert state_merge(row, {"status": "past_due"}, (10, "evt_c")) is True
    assert row.fields["status"] == ["past_due", 10, "evt_c"]
    assert row.fields["plan_code"] == ["premium", 10, "evt_b"]  # untouched by that event
    assert (row.last_event_created, row.last_event_id) == (10, "evt_c")


def test_merge_of_the_same_event_again_changes_nothing():
    row = SubscriptionState(fields={})
    state_merge(row, {"status": "active"}, (10, "evt_a"))
    assert state_merge(row, {"status": "active"}, (10, "evt_a")) is False


def test_merge_of_an_older_event_with_a_new_field_takes_that_field_only():
    row = SubscriptionState(fields={})
    state_merge(row, {"status": "active"}, (10, "evt_b"))
    assert state_merge(row, {"status": "trialing", "cancel_at_period_end": True}, (5, "evt_a"))
    assert row.value("status") == "active" and row.value("cancel_at_period_end") is True
    assert (row.last_event_created, row.last_event_id) == (10, "evt_b")


# desired_for_state: reads the catalogue

pytestmark = pytest.mark.django_db


def keys(wanted: dict) -> set:
    return set(wanted)


def expiry(wanted: dict) -> datetime:
    (only,) = {item.expires_at for item in wanted.values()}
    return only


@pytest.mark.parametrize(
    "values",
    [
        {"status": "canceled"},
        {"status": "incomplete"},
        {"status": "unpaid"},
        {"status": "paused"},
        {"status": None},
        {"deleted": True},
        {"reversal": "refund"},
    ],
)
def test_nothing_is_wanted_unless_live_and_not_deleted_or_reversed(values):
    assert desired_for_state(state(period_end=T0 + DAY, **values)) == {}


@pytest.mark.parametrize("status", ["active", "trialing"])
def test_a_live_subscription_wants_its_plans_features_until_period_end_plus_grace(status):
    wanted = desired_for_state(state(status=status, period_end=T0 + 10 * DAY))
    assert keys(wanted) == PREMIUM
    assert expiry(wanted) == when(T0 + 10 * DAY) + timedelta(days=3)
    item = wanted["signals_basic"]
    assert isinstance(item, Wanted) and item.plan.code == "premium"
    assert item.feature.lookup_key == "signals_basic"


def test_grace_days_come_from_the_plan():
    Plan.objects.filter(code="premium").update(grace_days=5)
    wanted = desired_for_state(state(period_end=T0))
    assert expiry(wanted) == when(T0) + timedelta(days=5)


def test_cancel_at_period_end_ends_at_the_period_end_without_grace():
    wanted = desired_for_state(state(period_end=T0 + DAY, cancel_at_period_end=True))
    assert expiry(wanted) == when(T0 + DAY)


def test_without_a_period_end_the_plans_default_duration_from_the_status_event():
    Plan.objects.filter(code="premium").update(default_duration_days=7)
    wanted = desired_for_state(state(created=T0 + 50, period_end=None))
    assert expiry(wanted) == when(T0 + 50) + timedelta(days=7)


def test_past_due_lasts_the_grace_days_from_the_failure():
    failed = desired_for_state(state(status="past_due", payment_failed_at=T0 + 100))
    assert expiry(failed) == when(T0 + 100) + timedelta(days=3)
    # past_due without a failure time: grace from the event that set the status.
    bare = desired_for_state(state(created=T0 + 7, status="past_due", period_end=T0 + 99 * DAY))
    assert expiry(bare) == when(T0 + 7) + timedelta(days=3)
    # A failure recorded on an active subscription counts the same way.
    active = desired_for_state(state(payment_failed_at=T0 + 9, period_end=T0 + 99 * DAY))
    assert expiry(active) == when(T0 + 9) + timedelta(days=3)


def test_stripes_entitlement_summary_overrides_the_plans_features():
    CustomerSummary.objects.create(
        stripe_customer_id="cus_1", lookup_keys=["copy_trading"], event_created=T0, event_id="e"
    )
    wanted = desired_for_state(state(period_end=T0))
    assert keys(wanted) == {"copy_trading"}
    assert wanted["copy_trading"].plan.code == "premium"
    # With a summary but no known plan: the summary's features, no grace, 30 days by default.
    no_plan = desired_for_state(state(plan_code="gone", period_end=None))
    assert keys(no_plan) == {"copy_trading"} and no_plan["copy_trading"].plan is None
    assert expiry(no_plan) == when(T0) + timedelta(days=30)
    ended = desired_for_state(state(plan_code=None, period_end=T0))
    assert expiry(ended) == when(T0)


def test_an_unknown_plan_without_a_summary_wants_nothing():
    assert desired_for_state(state(plan_code="gone", period_end=T0)) == {}
    assert desired_for_state(state(plan_code=None, period_end=T0)) == {}
