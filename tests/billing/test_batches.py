"""Batched application (billing/batches.py): many stored events in one task and one transaction,
with the same outcome as one at a time: every event applied once, a customer's events in
arrival order, each event's audit row before the rows of what it caused. Real PostgreSQL."""

import base64
import itertools
import json
import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from billing import batches, services, signals, stripe_events, tasks
from billing.db import advisory_lock_id
from billing.models import StripeEvent
from entitlements.models import Entitlement, Plan
from tests.billing.conftest import metric
from tests.billing.test_relay import broker  # noqa: F401 - a fixture
from tests.billing.test_worker import inbox_row
from tests.entitlements.conftest import DAY, T0, Customer
from tests.entitlements.test_ordering import (  # noqa: F401 - fake_stripe_api is a fixture
    EXAMPLES,
    active,
    build,
    drawn_deliveries,
    fake_stripe_api,
    lifecycles,
    outcome,
    settle_like_the_background_task,
)
from tests.servers import require_postgres

pytestmark = pytest.mark.django_db
_users = itertools.count(1)


@pytest.fixture
def make_user(django_user_model):
    return lambda: django_user_model.objects.create_user(username=f"batched{next(_users)}")


def stored(payload: dict) -> tuple[str, str]:
    """Store an event as the webhook does (its customer key read by billing's one reader)."""
    customer_key = stripe_events.parse(payload).customer_key
    inbox_row(payload, customer_key)
    return payload["id"], customer_key


def premium_lifecycle(make_user) -> tuple[object, list[dict]]:
    user = make_user()
    customer = Customer()
    return user, [
        customer.checkout(user, created=T0),
        customer.subscription("created", created=T0, sub_created=T0, plan="premium"),
    ]


# --- The plan ------------------------------------------------------------------------------


def test_a_customers_events_stay_together_in_arrival_order():
    claimed = [("e1", "cus_a"), ("e2", "cus_b"), ("e3", "cus_a"), ("e4", ""), ("e5", "cus_b"),
               ("e6", "cus_c"), ("e7", "cus_a")]  # fmt: skip
    groups, singles = batches.apply_batches_plan(claimed, batch_size=3)
    assert groups == [
        [("e1", "cus_a"), ("e3", "cus_a"), ("e7", "cus_a")],
        [("e2", "cus_b"), ("e5", "cus_b"), ("e6", "cus_c")],
    ]
    assert singles == [("e4", "")]  # a dispute naming only its charge: one at a time
    # A batch size of 1 is the one-task-per-event path.
    assert batches.apply_batches_plan(claimed, batch_size=1) == ([], claimed)


# --- One batch, one transaction --------------------------------------------------------------


def test_a_batch_applies_every_event_once_with_its_audit_rows_in_one_insert(make_user):
    require_postgres(connection)
    lifecycles_ = [premium_lifecycle(make_user) for _ in range(3)]
    items = [stored(payload) for _, payload_list in lifecycles_ for payload in payload_list]

    with CaptureQueriesContext(connection) as queries:
        assert batches.events_apply_batch(items=items) == 6
    audit_inserts = [q for q in queries if q["sql"].startswith('INSERT INTO "audit_auditevent"')]
    assert len(audit_inserts) == 1  # the batch's rows, together
    state_writes = [
        q for q in queries
        if q["sql"].startswith(('INSERT INTO "entitlements_subscriptionstate"',
                                'UPDATE "entitlements_subscriptionstate"'))
    ]  # fmt: skip
    assert len(state_writes) == 1  # the batch's subscription states, in one upsert
    # The nine grants (three features for each user), in one multi-row INSERT and nothing else.
    assert len(grant_writes(queries)) == 1
    assert grant_writes(queries)[0].startswith('INSERT INTO "entitlements_entitlement"')
    # One lock statement for the three customers, one read of the six rows.
    assert sum("pg_advisory_xact_lock" in q["sql"] for q in queries) == 1

    rows = StripeEvent.objects.filter(event_id__in=[event_id for event_id, _ in items])
    assert sorted(rows.values_list("status", "attempts")) == [("applied", 1)] * 6
    for user, _ in lifecycles_:
        features = Entitlement.objects.filter(user=user, revoked_at__isnull=True)
        assert sorted(features.values_list("feature__lookup_key", flat=True)) == [
            "advanced_analytics", "signals_basic", "signals_premium",
        ]  # fmt: skip
    # Cause before effect, event by event: each event's own row precedes its grants' rows.
    trail = list(AuditEvent.objects.order_by("id").values_list("stripe_event_id", "action"))
    for event_id, _ in items:
        own = [i for i, (ref, action) in enumerate(trail) if ref == event_id]
        assert own, event_id
        assert trail[own[0]][1].startswith("billing."), trail[own[0]]


def grant_writes(queries) -> list[str]:
    return [
        q["sql"] for q in queries
        if q["sql"].startswith(('INSERT INTO "entitlements_entitlement"',
                                'UPDATE "entitlements_entitlement"'))
    ]  # fmt: skip


def grant_history(user, event_ids: list[str]) -> list[tuple]:
    """A user's grants as stored, in creation order, each with the position of the event that
    made it in `event_ids`: what a batch must leave as the one at a time path does (ids and
    start times aside)."""
    rows = Entitlement.objects.filter(user=user).order_by("id")
    return [
        (row.feature.lookup_key, row.plan.code if row.plan else None,
         int(row.expires_at.timestamp()), row.revoked_at is not None, row.revoke_reason,
         event_ids.index(row.source_event_id))
        for row in rows.select_related("feature", "plan")
    ]  # fmt: skip


def grant_trail(user) -> list[tuple[str, str]]:
    """The audit rows of a user's grants, in trail order: (action, feature)."""
    rows = AuditEvent.objects.filter(target_type="entitlement", meta__user_id=user.pk)
    return [(row.action, row.meta["feature"]) for row in rows.order_by("id")]


def test_a_batch_writes_its_grants_in_one_insert_and_one_update_as_one_at_a_time_would(
    make_user,
):
    """A plan change (three grants extended, two created), then the subscription's end (all
    five revoked or shortened, two of them created in this very batch), in one batch: the
    stored grants are written in one UPDATE, the new ones in one INSERT, and the user's grants
    and their audit rows are those of a twin customer whose same events are applied one at a
    time. Fails when a later event of the batch reads the stored grants instead of the batch's
    (a second live row for a feature, or a revoke that misses a grant the batch created)."""
    require_postgres(connection)
    outcomes = []
    for batched in (True, False):
        user, customer = make_user(), Customer()
        first = [customer.checkout(user, created=T0),
                 customer.subscription("created", created=T0, plan="premium")]  # fmt: skip
        for item in [stored(payload) for payload in first]:
            services.event_apply(event_id=item[0], customer_id=item[1])
        later = [
            customer.subscription("updated", created=T0 + 60, plan="vip",
                                  period_end=T0 + 60 * DAY),
            customer.subscription("deleted", created=T0 + 120, status="canceled", plan="vip",
                                  period_end=T0 + 60 * DAY),
        ]  # fmt: skip
        items = [stored(payload) for payload in later]
        with CaptureQueriesContext(connection) as queries:
            if batched:
                assert batches.events_apply_batch(items=items) == 2
            else:
                for event_id, customer_id in items:
                    services.event_apply(event_id=event_id, customer_id=customer_id)
        if batched:
            writes = grant_writes(queries)
            assert [sql.split(None, 1)[0] for sql in writes] == ["UPDATE", "INSERT"], writes
        event_ids = [payload["id"] for payload in first + later]
        outcomes.append((grant_history(user, event_ids), grant_trail(user)))
    batched_outcome, one_at_a_time = outcomes
    assert batched_outcome == one_at_a_time
    history, trail = batched_outcome
    assert len(history) == 5 and len(trail) >= 10  # three premium grants, two of vip's


def test_duplicates_and_applied_events_in_a_batch_are_skipped(make_user):
    user, payloads = premium_lifecycle(make_user)
    first, second = (stored(payload) for payload in payloads)
    assert services.event_apply(event_id=first[0], customer_id=first[1]) is True
    skipped_before = metric(
        "tollgate_billing_events_processed_total", type="checkout.session.completed",
        outcome="skipped",
    )  # fmt: skip

    assert batches.events_apply_batch(items=[first, second, second]) == 1

    assert sorted(
        StripeEvent.objects.filter(event_id__in=[first[0], second[0]]).values_list("attempts")
    ) == [(1,), (1,)]
    assert metric(
        "tollgate_billing_events_processed_total", type="checkout.session.completed",
        outcome="skipped",
    ) == skipped_before + 1  # fmt: skip
    rows = Counter(
        AuditEvent.objects.filter(stripe_event_id=second[0]).values_list("action", "target_id")
    )
    assert set(rows.values()) == {1}  # nothing recorded twice
    assert Entitlement.objects.filter(user=user, revoked_at__isnull=True).count() == 3


def test_an_other_mode_event_in_a_batch_is_recorded_never_applied(make_user, settings):
    """A live-mode event inside a test-mode deployment's batch: marked and audited as of the
    other mode, as apply_event does; the batch's other events are applied."""
    settings.STRIPE_LIVE_MODE = False
    user, payloads = premium_lifecycle(make_user)
    payloads[1]["livemode"] = True  # the subscription's event is a live-mode one
    items = [stored(payload) for payload in payloads]
    StripeEvent.objects.filter(event_id=items[1][0]).update(livemode=True)

    assert batches.events_apply_batch(items=items) == 1

    statuses = dict(
        StripeEvent.objects.filter(event_id__in=[i for i, _ in items]).values_list(
            "event_id", "status"
        )
    )
    assert statuses == {items[0][0]: "applied", items[1][0]: "other_mode"}
    other = AuditEvent.objects.filter(stripe_event_id=items[1][0])
    assert list(other.values_list("action", flat=True)) == ["billing.event.other_mode"]
    assert not Entitlement.objects.filter(user=user).exists()  # its plan was never granted


@pytest.fixture
def failing_event():
    """A receiver downstream that fails on one event id (a plug-in receiver of billing's
    signal, as any app may connect; nothing of ours is replaced)."""
    failing = set()

    def fail(sender, billing_event, **kwargs):
        if billing_event.event_id in failing:
            raise RuntimeError("downstream failure")

    signals.stripe_event_processed.connect(fail, dispatch_uid="tests.failing_event")
    try:
        yield failing
    finally:
        signals.stripe_event_processed.disconnect(dispatch_uid="tests.failing_event")


def test_a_failing_event_rolls_the_whole_batch_back(make_user, failing_event):
    user, payloads = premium_lifecycle(make_user)
    items = [stored(payload) for payload in payloads]
    failing_event.add(items[1][0])

    with pytest.raises(RuntimeError):
        batches.events_apply_batch(items=items)

    statuses = StripeEvent.objects.filter(event_id__in=[i for i, _ in items])
    assert set(statuses.values_list("status", flat=True)) == {"received"}
    assert not AuditEvent.objects.filter(stripe_event_id__in=[i for i, _ in items]).exists()
    assert not Entitlement.objects.filter(user=user).exists()


def test_a_failed_batch_hands_each_event_to_the_one_at_a_time_path(
    make_user, failing_event, request
):
    queue = request.getfixturevalue("broker")  # the real Redis queue, not eager
    _, payloads = premium_lifecycle(make_user)
    items = [stored(payload) for payload in payloads]
    failing_event.add(items[1][0])
    fallbacks = metric("tollgate_billing_apply_batch_fallbacks_total", error="RuntimeError")

    tasks.apply_events.apply(args=(batches.batch_args(items),))

    messages = [json.loads(message) for message in queue.lrange("celery", 0, -1)]
    assert sorted(m["headers"]["task"] for m in messages) == ["billing.tasks.apply_event"] * 2
    assert metric("tollgate_billing_apply_batch_fallbacks_total", error="RuntimeError") == (
        fallbacks + 1
    )
    # Nothing of the batch stayed applied: each event is applied (or retried) on its own.
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"received"}


def test_overlapping_batches_in_opposite_orders_never_deadlock(transactional_db, make_user):
    """Batch B takes four customers' locks in one order, batch C the reverse order. A third
    transaction holds the second customer's lock until both batches wait: taken in the
    batches' own orders, B would hold the first and C the last two, and whichever got the
    second next would wait for the other (a deadlock). Taken in one sorted order, they queue."""
    require_postgres(connection)
    lifecycles_ = [premium_lifecycle(make_user) for _ in range(4)]
    items = [stored(payload) for _, payload_list in lifecycles_ for payload in payload_list]
    holder = connections.create_connection("default")
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_lock_id("apply", items[2][1])])
    errors: list[BaseException] = []

    def apply(batch):
        try:
            batches.events_apply_batch(items=batch)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=apply, args=(batch,)) for batch in (items, items[::-1])]
    try:
        for thread in threads:
            thread.start()
        waiting = 0
        for _ in range(200):  # until both batches wait for a lock
            with holder.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
                waiting = cursor.fetchone()[0]
            if waiting == 2:
                break
            time.sleep(0.05)
        assert waiting == 2
    finally:
        holder.rollback()
        holder.close()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    rows = StripeEvent.objects.filter(event_id__in=[event_id for event_id, _ in items])
    assert sorted(rows.values_list("status", "attempts")) == [("applied", 1)] * 8
    for user, _ in lifecycles_:
        assert Entitlement.objects.filter(user=user, revoked_at__isnull=True).count() == 3


def test_a_relay_batch_leaves_a_busy_customer_to_a_batch_of_its_own(
    transactional_db, make_user, request
):
    """The relay's batches never wait for a customer another transaction holds (two batches
    sharing a customer would otherwise run one after the other): the free customers' events
    are applied, the busy one's are published again as a batch that waits for its lock, and
    that batch applies them once the lock is free. Fails when the batch waits (it would block
    here until the holder ends) or drops the busy customer's events."""
    queue = request.getfixturevalue("broker")  # the real Redis queue, not eager
    (_, free_payloads), (_, busy_payloads) = (premium_lifecycle(make_user) for _ in range(2))
    free = [stored(payload) for payload in free_payloads]
    busy = [stored(payload) for payload in busy_payloads]
    deferred_before = metric("tollgate_billing_apply_batch_deferred_total")
    holder = connections.create_connection("default")
    holder.set_autocommit(False)
    try:
        with holder.cursor() as cursor:  # another transaction working on the busy customer
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s)", [advisory_lock_id("apply", busy[0][1])]
            )
        outcome: list[object] = []

        def relay_batch():
            try:
                tasks.apply_events.apply(args=(batches.batch_args(busy + free),)).get()
                outcome.append("done")
            except BaseException as error:  # reported below
                outcome.append(error)
            finally:
                connections.close_all()

        thread = threading.Thread(target=relay_batch)
        thread.start()
        thread.join(timeout=20)
        assert outcome == ["done"]  # it did not wait for the holder
        status = dict(StripeEvent.objects.values_list("event_id", "status"))
        assert {status[event_id] for event_id, _ in free} == {"applied"}
        assert {status[event_id] for event_id, _ in busy} == {"received"}
        messages = [json.loads(message) for message in queue.lrange("celery", 0, -1)]
        assert [m["headers"]["task"] for m in messages] == ["billing.tasks.apply_events"]
        args, kwargs, _ = json.loads(base64.b64decode(messages[0]["body"]))
        assert [tuple(item) for item in args[0]] == busy and kwargs == {"wait": True}
        assert metric("tollgate_billing_apply_batch_deferred_total") == deferred_before + 2
    finally:
        holder.rollback()
        holder.close()
    tasks.apply_events.apply(args=args, kwargs=kwargs).get()
    status = dict(StripeEvent.objects.values_list("event_id", "status"))
    assert {status[event_id] for event_id, _ in busy} == {"applied"}
    rows = StripeEvent.objects.filter(event_id__in=[event_id for event_id, _ in busy + free])
    assert sorted(rows.values_list("attempts", flat=True)) == [1] * 4


# --- Stripe's habits, batched ----------------------------------------------------------------


@settings(
    max_examples=max(EXAMPLES // 2, 30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=lifecycles(), data=st.data())
def test_batches_of_every_delivery_order_with_ties_and_duplicates_end_in_the_true_state(
    make_user, request, drawn, data
):
    """test_ordering's property, through billing's batches: the events are stored as the
    webhook stores them (a duplicate delivery stores nothing), the relay's claims are cut where
    drawn and planned into batches of a drawn size, and a duplicate task re-sends an event."""
    subs, starts, choices, gaps, starts_at = drawn
    with transaction.atomic():
        user = make_user()
        truth, events = build(user, subs, starts, choices, gaps, starts_at)
        order, deliveries = drawn_deliveries(data, events)
        claimed = [stored(events[index]) for index in order]
        by_id = dict(claimed)
        tasks_ = [(events[index]["id"], by_id[events[index]["id"]]) for index in deliveries]
        cuts = sorted(data.draw(st.sets(st.integers(1, len(tasks_))), label="claims"))
        batch_size = data.draw(st.integers(1, 6), label="batch size")
        for claim in (tasks_[a:b] for a, b in zip([0, *cuts], [*cuts, len(tasks_)], strict=False)):
            groups, singles = batches.apply_batches_plan(claim, batch_size=batch_size)
            for group in groups:
                batches.events_apply_batch(items=group)
            for event_id, customer_id in singles:
                services.event_apply(event_id=event_id, customer_id=customer_id)
        settle_like_the_background_task(truth, request.getfixturevalue("fake_stripe_api"))
        plan_ids = dict(Plan.objects.values_list("code", "pk"))
        assert active(outcome(user)) == active(truth.expected(plan_ids))
        attempts = StripeEvent.objects.filter(event_id__in=by_id).values_list("status", "attempts")
        assert set(attempts) == {("applied", 1)}  # each once, whatever the duplicates
        transaction.set_rollback(True)
