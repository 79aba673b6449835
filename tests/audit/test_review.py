"""The automated daily review: each kind of finding from real trail rows, linked to them."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib.auth.models import Group

from audit.models import AuditEvent, DailyCount, DailyReview, FindingKind
from audit.review import _outside_business_hours
from audit.services import Target, audit_event_record
from audit.tasks import daily_review
from billing.models import StripeEvent
from config.context import Actor
from tests.audit_trail import audit_seal, sealed_checkpoint, sealed_review
from tests.stripe_fixtures import event, resource, unique_id

# Checkpoints here are made with audit_checkpoint_create: the beat task's audit_checkpoint_sign
# also appends a row after the checkpoint, which a review of *today* would see as uncovered
# (the real review runs on yesterday, long covered by the hourly checkpoint).


@pytest.fixture
def today(postgres) -> date:
    return datetime.now(UTC).date()


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("sam", is_staff=True)


def by_kind(review: DailyReview) -> dict[str, list]:
    found: dict[str, list] = {}
    for finding in review.findings.order_by("id"):
        found.setdefault(finding.kind, []).append(finding)
    return found


def sequences(rows) -> list[int]:
    sealed = AuditEvent.objects.in_bulk([row.pk for row in rows])
    return [sealed[row.pk].sequence for row in rows]


def rejected(n: int, problem: str = "webhook-signature-invalid") -> list[AuditEvent]:
    return [
        audit_event_record(
            action="billing.webhook.rejected",
            actor=Actor(kind="stripe"),
            outcome="failure",
            target=Target("webhook", "", "webhook delivery"),
            meta={"problem": problem, "http_status": 400},
        )
        for _ in range(n)
    ]


def manual(action: str, staff, user_id: int) -> AuditEvent:
    return audit_event_record(
        action=action,
        actor=Actor(kind="user", user_id=staff.pk),
        target=Target("entitlement", "1", "pro for user"),
        reason="support ticket",
        meta={"user_id": user_id, "feature": "pro"},
    )


def test_a_quiet_day_with_a_fresh_checkpoint_has_no_findings(today, trail):
    rows = trail(3)
    sealed_checkpoint()
    review = sealed_review(day=today)
    assert review.chain_ok
    assert review.findings.count() == 0
    assert [review.first_sequence] == sequences(rows[:1])
    assert review.rows >= 3
    # Idempotent: the day is reviewed once.
    assert sealed_review(day=today).pk == review.pk
    assert AuditEvent.objects.filter(action="audit.review.created").count() == 1


def test_missing_checkpoint_is_a_finding(today, trail):
    trail(2)
    found = by_kind(sealed_review(day=today))
    assert "no checkpoint" in found[FindingKind.CHECKPOINT_STALE][0].summary


def test_checkpoint_older_than_the_day_is_a_finding(today, trail):
    sealed_checkpoint()
    trail(2)  # rows after the newest checkpoint: it does not cover the day
    found = by_kind(sealed_review(day=today))
    assert "does not cover the day" in found[FindingKind.CHECKPOINT_STALE][0].summary


def test_rejected_webhook_and_signature_spikes_link_their_rows(today, settings):
    settings.AUDIT_REVIEW_SPIKE_FLOOR = 3
    bad_signatures = rejected(4)
    stale = rejected(2, problem="webhook-timestamp-out-of-tolerance")
    sealed_checkpoint()
    found = by_kind(sealed_review(day=today))
    assert found[FindingKind.INVALID_SIGNATURE_SPIKE][0].sequences == sequences(bad_signatures)
    assert found[FindingKind.WEBHOOK_REJECTED_SPIKE][0].sequences == sequences(
        bad_signatures + stale
    )
    assert "6 rejected webhooks" in found[FindingKind.WEBHOOK_REJECTED_SPIKE][0].summary


def test_below_the_floor_is_no_spike(today, settings):
    settings.AUDIT_REVIEW_SPIKE_FLOOR = 5
    rejected(5)
    sealed_checkpoint()
    found = by_kind(sealed_review(day=today))
    assert FindingKind.WEBHOOK_REJECTED_SPIKE not in found


def test_a_high_trailing_baseline_is_no_spike_and_a_broken_chain_is_a_finding(
    today, settings, tamper
):
    settings.AUDIT_REVIEW_SPIKE_FLOOR = 1
    earlier = rejected(20)
    rejected(4)
    # The baseline's rows moved to the days before (raw SQL, triggers off): 20 over 7 days
    # is a mean of 2.9 a day, so 4 today is under 3 x the mean. Moving them breaks the chain.
    audit_seal()
    tamper(
        (
            "UPDATE audit_auditevent SET occurred_at = occurred_at - interval '2 days' "
            "WHERE sequence = ANY(%s)",
            [sequences(earlier)],
        )
    )
    sealed_checkpoint()
    found = by_kind(sealed_review(day=today))
    assert FindingKind.WEBHOOK_REJECTED_SPIKE not in found
    broken = found[FindingKind.CHAIN_BROKEN][0]
    assert broken.sequences == sequences([earlier[0]])
    assert DailyReview.objects.get(day=today).chain_ok is False


def test_dead_letters_waiting_and_reprocessed(today, staff):
    payload = event("invoice.paid", resource("invoice", id=unique_id("in")))
    StripeEvent.objects.create(
        event_id=payload["id"], type="invoice.paid", created=payload["created"],
        payload=payload, status="dead",
    )  # fmt: skip
    row = audit_event_record(
        action="billing.deadletter.reprocessed",
        actor=Actor(kind="user", user_id=staff.pk),
        target=Target("stripe_event", "evt_1", "invoice.paid evt_1"),
    )
    sealed_checkpoint()
    finding = by_kind(sealed_review(day=today))[FindingKind.DEAD_LETTERS][0]
    assert finding.sequences == sequences([row])
    assert finding.actor_ids == [str(staff.pk)]
    assert finding.summary.startswith("1 dead letters waiting")


def test_manual_grants_outside_hours_in_bulk_and_to_oneself(
    today, settings, staff, django_user_model
):
    customer = django_user_model.objects.create_user("carla")
    settings.AUDIT_REVIEW_BULK_THRESHOLD = 2
    # [0, 0): every hour is outside business hours, whatever the clock says.
    settings.AUDIT_REVIEW_BUSINESS_START_HOUR = 0
    settings.AUDIT_REVIEW_BUSINESS_END_HOUR = 0
    grant = manual("entitlements.grant.created", staff, customer.pk)
    own = manual("entitlements.grant.extended", staff, staff.pk)
    revokes = [manual("entitlements.grant.revoked", staff, customer.pk) for _ in range(3)]
    # Stripe's grants are not manual: never flagged.
    audit_event_record(
        action="entitlements.grant.created", actor=Actor(kind="stripe"), meta={"user_id": 9}
    )
    sealed_checkpoint()
    found = by_kind(sealed_review(day=today))
    assert found[FindingKind.GRANT_OUTSIDE_HOURS][0].sequences == sequences([grant, own, *revokes])
    [bulk] = found[FindingKind.GRANT_BULK]  # 2 grants: not over 2; 3 revokes: over
    assert bulk.sequences == sequences(revokes)
    assert "3 manual revokes by sam" in bulk.summary
    assert found[FindingKind.GRANT_OWN_ACCOUNT][0].sequences == sequences([own])
    assert found[FindingKind.GRANT_OWN_ACCOUNT][0].actor_ids == [str(staff.pk)]


def test_business_hours_are_utc_weekdays(settings):
    settings.AUDIT_REVIEW_BUSINESS_START_HOUR = 8
    settings.AUDIT_REVIEW_BUSINESS_END_HOUR = 18
    monday = datetime(2026, 11, 30, tzinfo=UTC)
    assert not _outside_business_hours(monday.replace(hour=8))
    assert not _outside_business_hours(monday.replace(hour=17, minute=59))
    assert _outside_business_hours(monday.replace(hour=18))
    assert _outside_business_hours(monday.replace(hour=7, minute=59))
    assert _outside_business_hours(monday.replace(hour=12) - timedelta(days=1))  # Sunday


def test_sign_ins_lockouts_role_changes_and_second_factor_resets(
    today, settings, staff, django_user_model
):
    settings.AUDIT_REVIEW_FAILED_SIGNIN_THRESHOLD = 2
    failed = [
        audit_event_record(
            action="auth.login.failed",
            actor=Actor(kind="user", user_id=staff.pk),
            outcome="failure",
            target=Target("user", str(staff.pk), "user sam"),
        )
        for _ in range(2)
    ]
    locked = audit_event_record(
        action="auth.login.locked_out",
        actor=Actor(kind="user", user_id=staff.pk),
        outcome="failure",
        target=Target("user", str(staff.pk), "user sam"),
    )
    staff.groups.add(Group.objects.get(name="Finance"))  # the receiver writes the row
    role = AuditEvent.objects.filter(action="auth.role.changed").latest("sequence")
    reset = audit_event_record(
        action="auth.second_factor.reset",
        target=Target("user", str(staff.pk), "user sam"),
        reason="lost phone",
    )
    sealed_checkpoint()
    found = by_kind(sealed_review(day=today))
    assert found[FindingKind.SIGN_IN_FAILURES][0].sequences == sequences(failed)
    assert found[FindingKind.LOCKOUTS][0].sequences == sequences([locked])
    assert found[FindingKind.ROLE_CHANGES][0].sequences == sequences([role])
    assert found[FindingKind.SECOND_FACTOR_RESETS][0].sequences == sequences([reset])


def test_one_failed_sign_in_under_the_threshold_is_no_finding(today, staff):
    audit_event_record(
        action="auth.login.failed",
        actor=Actor(kind="user", user_id=staff.pk),
        outcome="failure",
        target=Target("user", str(staff.pk), "user sam"),
    )
    sealed_checkpoint()
    assert FindingKind.SIGN_IN_FAILURES not in by_kind(sealed_review(day=today))


def test_the_beat_task_reviews_yesterday_and_fills_the_charts_counts(today, trail):
    trail(2)
    review = DailyReview.objects.get(pk=daily_review())
    assert review.day == today - timedelta(days=1)
    assert review.rows == 0  # today's rows belong to tomorrow's review
    # Yesterday and the 88 days before it are counted (none had rows); today is read live.
    assert not DailyCount.objects.filter(day=today).exists()
    sealed_review(day=today)
    assert DailyCount.objects.get(day=today, action="billing.payment.completed").rows == 2
