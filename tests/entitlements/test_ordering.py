"""Out of order and duplicated delivery: any permutation with duplicates of a realistic
lifecycle ends in exactly the entitlements of in-order delivery."""

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entitlements.models import Entitlement
from tests.entitlements.conftest import DAY, T0, Customer, deliver
from tests.stripe_fixtures import unique_id

pytestmark = pytest.mark.django_db

STEPS = ["renew", "fail", "past_due", "upgrade", "downgrade", "cancel_at_end", "refund", "summary",
         "dispute"]  # fmt: skip


def lifecycle(user, steps, *, end_deleted: bool) -> list[dict]:
    """A subscription's events in the order Stripe created them, one second apart or more."""
    customer = Customer()
    now, period_end, plan = T0, T0 + 30 * DAY, "premium"
    events = [customer.checkout(user, created=now), customer.subscription(created=now + 1)]
    now += 1
    for step in steps:
        now += 3600
        if step == "renew":
            period_end += 30 * DAY
            events.append(customer.invoice("paid", created=now, period_end=period_end))
            events.append(customer.subscription("updated", created=now + 1, plan=plan,
                                                period_end=period_end))  # fmt: skip
        elif step == "fail":
            events.append(customer.invoice("payment_failed", created=now))
        elif step == "past_due":
            events.append(customer.subscription("updated", created=now, status="past_due",
                                                plan=plan, period_end=period_end))  # fmt: skip
        elif step in {"upgrade", "downgrade"}:
            plan = "vip" if step == "upgrade" else "free"
            events.append(customer.subscription("updated", created=now, plan=plan,
                                                period_end=period_end))  # fmt: skip
        elif step == "cancel_at_end":
            events.append(customer.subscription("updated", created=now, plan=plan,
                          period_end=period_end, cancel_at_period_end=True))  # fmt: skip
        elif step == "refund":
            events.append(customer.refund(created=now))
        elif step == "dispute":
            # Shuffled, the dispute often arrives before the only event naming its charge's
            # customer: parked, then applied when that event comes.
            charge_id = unique_id("ch")
            events.append(customer.charge(charge_id, created=now))
            events.append(customer.dispute(charge_id, created=now + 1))
        elif step == "summary":
            events.append(customer.summary(["signals_basic", "vip_support"], created=now))
    if end_deleted:
        events.append(customer.subscription("deleted", created=now + 3600, status="canceled",
                                            plan=plan, period_end=period_end))  # fmt: skip
    return events


def outcome(user) -> set:
    rows = Entitlement.objects.filter(user=user, revoked_at__isnull=True)
    rows = rows.select_related("feature")
    return {(row.feature.lookup_key, row.expires_at, row.plan_id) for row in rows}


def run(make_user, events_for, order) -> set:
    """Deliver in a transaction that is rolled back, so each example starts clean."""
    with transaction.atomic():
        user = make_user()
        events = events_for(user)
        for index in order(len(events)):
            deliver(events[index])
        result = outcome(user)
        transaction.set_rollback(True)
    return result


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(st.sampled_from(STEPS), max_size=6),
    end_deleted=st.booleans(),
    data=st.data(),
)
def test_permutations_and_duplicates_end_in_the_in_order_result(
    make_user, steps, end_deleted, data
):
    # Event ids are drawn once, so both runs see the very same events.
    recorded: list = []

    def events_for(user):
        if not recorded:
            recorded.extend(lifecycle(user, steps, end_deleted=end_deleted))
        # The checkout names the user by id: point it at this run's user.
        recorded[0]["data"]["object"]["client_reference_id"] = str(user.pk)
        return recorded

    expected = run(make_user, events_for, lambda n: range(n))
    permutation = data.draw(st.permutations(range(len(recorded))), label="order")
    duplicates = data.draw(
        st.lists(st.integers(0, len(recorded) - 1), max_size=4), label="duplicates"
    )
    shuffled = list(permutation)
    for index, duplicate in enumerate(duplicates):
        shuffled.insert((index * 7) % (len(shuffled) + 1), duplicate)
    assert run(make_user, events_for, lambda n: shuffled) == expected


def test_an_older_event_never_overrides_newer_state(make_user):
    user = make_user()
    customer = Customer()
    deliver(customer.checkout(user))
    deliver(customer.subscription("updated", created=T0 + 100, plan="vip"))
    deliver(customer.subscription("created", created=T0 + 1, plan="free"))
    keys = set(
        Entitlement.objects.filter(user=user, revoked_at=None).values_list(
            "feature__lookup_key", flat=True
        )
    )
    assert keys == {"signals_basic", "signals_premium", "advanced_analytics", "vip_support",
                    "copy_trading"}  # fmt: skip
