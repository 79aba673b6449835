"""The pure decisions of entitlements/subscriptions.py: `state_merge` (field by field, newest
event wins; inside a second, in the order the payloads say) and `desired_for_state` (which
features until when, from the stored state alone).

Only the catalogue is read from the database (any database: `make mutation` runs these on
SQLite, `make test` on PostgreSQL).
"""

from datetime import UTC, datetime, timedelta

import pytest

from entitlements.models import CustomerReversal, CustomerSummary, Plan, SubscriptionState
from entitlements.ordering import Facts
from entitlements.subscriptions import (
    JOURNAL_WINDOW_SECONDS,
    Wanted,
    desired_for_state,
    state_merge,
)

T0 = 1_800_000_000
DAY = 86400
PREMIUM = {"signals_basic", "signals_premium", "advanced_analytics"}


def when(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def facts(created, event_id, kind="updated", previous=None, attributes=None, **values):
    return Facts(
        event_id=event_id,
        created=created,
        kind=kind,
        status=values.get("status"),
        attributes=attributes if attributes is not None else {"status": values.get("status")},
        previous=previous or {},
        values=values,
    )


def state(created: int = T0, event_id: str = "evt_1", **values) -> SubscriptionState:
    row = SubscriptionState(stripe_subscription_id="sub_1", stripe_customer_id="cus_1")
    state_merge(row, facts(created, event_id, **{"status": "active", "plan_code": "premium",
                                                  **values}))  # fmt: skip
    return row


# state_merge: no database


def test_merge_of_a_new_field_records_value_and_version():
    row = SubscriptionState(fields={})
    assert state_merge(row, facts(10, "evt_a", status="active", period_end=None)) is True
    assert row.fields == {"status": ["active", 10, "evt_a"], "period_end": [None, 10, "evt_a"]}
    assert (row.last_event_created, row.last_event_id) == (10, "evt_a")
    assert [entry["id"] for entry in row.journal] == ["evt_a"]


def test_merge_keeps_each_fields_newest_value_by_created():
    row = SubscriptionState(fields={})
    state_merge(row, facts(10, "evt_b", status="active", plan_code="premium"))
    # Older by time: changes nothing, not even the last event.
    assert state_merge(row, facts(9, "evt_z", status="canceled")) is True
    assert row.value("status") == "active"
    assert (row.last_event_created, row.last_event_id) == (10, "evt_b")
    assert state_merge(row, facts(11, "evt_a", status="past_due")) is True
    assert row.fields["status"] == ["past_due", 11, "evt_a"]
    assert row.fields["plan_code"] == ["premium", 10, "evt_b"]  # untouched by that event
    assert (row.last_event_created, row.last_event_id) == (11, "evt_a")


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_same_second_is_decided_by_the_payloads_never_the_ids(order):
    created = facts(10, "evt_zzz", kind="created", status="incomplete")
    updated = facts(10, "evt_aaa", status="active", previous={"status": "incomplete"})
    row = SubscriptionState(fields={})
    for index in order:
        state_merge(row, (created, updated)[index])
    assert row.fields["status"] == ["active", 10, "evt_aaa"]
    assert row.unsettled_second is None
    assert (row.last_event_created, row.last_event_id) == (10, "evt_aaa")


def test_an_undecidable_second_is_marked_unsettled_and_a_fetch_settles_it():
    row = SubscriptionState(fields={})
    state_merge(row, facts(10, "evt_a", status="active", previous={"status": "past_due"},
                           attributes={"status": "active"}))  # fmt: skip
    state_merge(row, facts(10, "evt_b", status="past_due", previous={"status": "active"},
                           attributes={"status": "past_due"}))  # fmt: skip
    assert row.unsettled_second == 10
    state_merge(row, facts(50, "fetch:50", kind="fetch", status="active"))
    assert (row.value("status"), row.unsettled_second) == ("active", None)


def test_merge_of_the_same_event_again_changes_nothing():
    row = SubscriptionState(fields={})
    state_merge(row, facts(10, "evt_a", status="active"))
    before = (dict(row.fields), list(row.journal))
    assert state_merge(row, facts(10, "evt_a", status="active")) is False
    assert (row.fields, row.journal) == before


def test_merge_of_an_older_event_with_a_new_field_takes_that_field_only():
    row = SubscriptionState(fields={})
    state_merge(row, facts(10, "evt_b", status="active"))
    state_merge(row, facts(5, "evt_a", status="trialing", cancel_at_period_end=True))
    assert row.value("status") == "active" and row.value("cancel_at_period_end") is True
    assert (row.last_event_created, row.last_event_id) == (10, "evt_b")


def test_the_journal_keeps_a_week_after_the_newest_event():
    row = SubscriptionState(fields={})
    state_merge(row, facts(10, "evt_old", status="active"))
    state_merge(row, facts(10 + JOURNAL_WINDOW_SECONDS, "evt_edge", status="active"))
    assert [entry["id"] for entry in row.journal] == ["evt_old", "evt_edge"]
    state_merge(row, facts(11 + JOURNAL_WINDOW_SECONDS, "evt_new", status="active"))
    assert [entry["id"] for entry in row.journal] == ["evt_edge", "evt_new"]


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
    ],
)
def test_nothing_is_wanted_unless_live_and_not_deleted_or_reversed(values):
    assert desired_for_state(state(period_end=T0 + DAY, **values)) == {}


def test_a_refund_made_while_it_existed_and_not_paid_again_wants_nothing():
    CustomerReversal.objects.create(
        stripe_customer_id="cus_1", event_id="evt_refund", kind="refund", created=T0 + 5
    )
    assert desired_for_state(state(period_end=T0 + DAY, sub_created=T0)) == {}
    assert desired_for_state(state(period_end=T0 + DAY, sub_created=T0, last_paid=T0 + 5)) == {}
    paid_after = state(period_end=T0 + DAY, sub_created=T0, last_paid=T0 + 6)
    assert keys(desired_for_state(paid_after)) == PREMIUM
    created_after = state(period_end=T0 + DAY, sub_created=T0 + 6)
    assert keys(desired_for_state(created_after)) == PREMIUM


def test_a_trial_wants_its_features_until_trial_end_without_grace():
    wanted = desired_for_state(state(status="trialing", trial_end=T0 + 7 * DAY,
                                     period_end=T0 + 30 * DAY))  # fmt: skip
    assert keys(wanted) == PREMIUM and expiry(wanted) == when(T0 + 7 * DAY)
    without_trial_end = desired_for_state(state(status="trialing", period_end=T0 + 10 * DAY))
    assert expiry(without_trial_end) == when(T0 + 10 * DAY)


@pytest.mark.parametrize("status", ["active"])
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


def _unsettled_at_10() -> SubscriptionState:
    row = SubscriptionState(fields={})
    state_merge(row, facts(10, "evt_a", status="active", previous={"status": "past_due"},
                           attributes={"status": "active"}))  # fmt: skip
    state_merge(row, facts(10, "evt_b", status="past_due", previous={"status": "active"},
                           attributes={"status": "past_due"}))  # fmt: skip
    return row


def test_a_later_decided_event_leaves_an_earlier_second_unsettled():
    row = _unsettled_at_10()
    state_merge(row, facts(20, "evt_c", status="active"))
    assert row.unsettled_second == 10  # only a fetch settles it


def test_a_fetch_in_the_unsettled_second_itself_settles_it():
    row = _unsettled_at_10()
    state_merge(row, facts(10, "fetch:10", kind="fetch", status="past_due"))
    assert row.unsettled_second is None


def test_a_trial_without_a_period_ends_at_trial_end():
    wanted = desired_for_state(state(status="trialing", trial_end=T0 + 5 * DAY, period_end=None))
    assert expiry(wanted) == when(T0 + 5 * DAY)


def test_a_later_event_of_the_same_second_that_decides_it_settles_it():
    row = _unsettled_at_10()
    state_merge(row, facts(10, "evt_end", kind="deleted", status="canceled"))
    assert row.unsettled_second is None and row.value("status") == "canceled"


def test_live_statuses_are_the_ones_that_give_access():
    from entitlements.subscriptions import LIVE_STATUSES

    assert frozenset({"active", "trialing", "past_due"}) == LIVE_STATUSES
