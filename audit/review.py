"""The automated daily review (PCI DSS 10.4.1.1): one UTC day of the trail, its findings.

daily_review_create() verifies the chain, checks that a fresh checkpoint covers the day, and
flags what a reviewer must look at, each finding linked to the audit rows behind it (their
sequence numbers). It reads the trail by the occurred_at index, one day (or the baseline's
days) at a time, and never changes it except to record that the review was written.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import BigIntegerField, Count, Max, Min, QuerySet, Sum, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncDate

from audit import actions
from audit.charts import daily_counts_fill
from audit.models import (
    ActorType,
    AuditCheckpoint,
    AuditEvent,
    DailyReview,
    FindingKind,
    ReviewFinding,
)
from audit.sealing import audit_seal_pending
from audit.selectors import dead_letters_waiting
from audit.services import Target, audit_event_record, chain_verification_run

SIGNATURE_PROBLEMS = ("webhook-signature-invalid", "webhook-signature-missing")
MANUAL_GRANTS = (
    actions.GRANT_CREATED.name,
    actions.GRANT_EXTENDED.name,
    actions.BLOCK_LIFTED.name,
)
MANUAL_REVOKES = (actions.GRANT_REVOKED.name, actions.BLOCK_CREATED.name)


# (sequence, acting user's id or "") of a row behind a finding. The review seals the committed
# rows first, but a row whose transaction was still open then has no sequence yet (None).
Link = tuple[int | None, str]


@dataclass
class Draft:
    """A finding before it is stored: what, why, and the rows (sequence, actor id) behind it."""

    kind: str
    summary: str
    rows: list[Link] = field(default_factory=list)

    def finding(self, review: DailyReview) -> ReviewFinding:
        limit = settings.AUDIT_REVIEW_MAX_LINKED
        return ReviewFinding(
            review=review,
            kind=self.kind,
            summary=self.summary[:500],
            sequences=[sequence for sequence, _ in self.rows[:limit]],
            actor_ids=sorted({actor for _, actor in self.rows if actor}),
        )


PARAMETER_SETTINGS = (
    "AUDIT_REVIEW_SPIKE_FACTOR",
    "AUDIT_REVIEW_SPIKE_FLOOR",
    "AUDIT_REVIEW_BASELINE_DAYS",
    "AUDIT_REVIEW_BUSINESS_START_HOUR",
    "AUDIT_REVIEW_BUSINESS_END_HOUR",
    "AUDIT_REVIEW_BULK_THRESHOLD",
    "AUDIT_REVIEW_FAILED_SIGNIN_THRESHOLD",
    "AUDIT_REVIEW_CHECKPOINT_MAX_AGE_SECONDS",
    "AUDIT_REVIEW_MAX_LINKED",
)


def review_parameters() -> dict[str, Any]:
    """The thresholds a review runs with, as stored on it (its evidence states them)."""
    return {name: getattr(settings, name) for name in PARAMETER_SETTINGS}


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def _rows_of(day: date, *action_names: str) -> QuerySet[AuditEvent]:
    start, end = day_bounds(day)
    return AuditEvent.objects.filter(
        occurred_at__gte=start, occurred_at__lt=end, action__in=action_names
    ).order_by("sequence")


def _linked(queryset: QuerySet[AuditEvent]) -> list[Link]:
    """(sequence, acting user's id or "") of each row."""
    return [
        (sequence, actor_id if actor_type == ActorType.USER else "")
        for sequence, actor_type, actor_id in queryset.values_list(
            "sequence", "actor_type", "actor_id"
        )
    ]


def _chain_drafts(review: DailyReview, now: datetime) -> tuple[list[Draft], bool]:
    drafts = []
    result = chain_verification_run()
    if not result.ok:
        drafts.append(
            Draft(
                FindingKind.CHAIN_BROKEN,
                f"The chain does not verify at sequence {result.first_bad_sequence}: "
                f"{result.problem}.",
                [(result.first_bad_sequence, "")] if result.first_bad_sequence else [],
            )
        )
    checkpoint = AuditCheckpoint.objects.order_by("-id").first()
    max_age = timedelta(seconds=settings.AUDIT_REVIEW_CHECKPOINT_MAX_AGE_SECONDS)
    if checkpoint is None:
        problem = "no checkpoint has been signed"
    elif review.last_sequence and checkpoint.sequence < review.last_sequence:
        problem = f"the newest checkpoint (#{checkpoint.sequence}) does not cover the day"
    elif now - checkpoint.created_at > max_age:
        problem = f"the newest checkpoint (#{checkpoint.sequence}) is older than {max_age}"
    else:
        problem = ""
    if problem:
        drafts.append(Draft(FindingKind.CHECKPOINT_STALE, f"Checkpoints: {problem}."))
    return drafts, result.ok


def _per_day(day: date, queryset: QuerySet[AuditEvent]) -> tuple[int, float]:
    """The day's count and the mean of the baseline days before it (one grouped query). A row
    that aggregates several refusals (one per address, problem and minute) counts them all."""
    baseline_days = settings.AUDIT_REVIEW_BASELINE_DAYS
    start, _ = day_bounds(day - timedelta(days=baseline_days))
    _, end = day_bounds(day)
    counts = dict(
        queryset.filter(occurred_at__gte=start, occurred_at__lt=end)
        .annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .order_by()
        .values_list("day")
        .annotate(rows=Sum(Coalesce(Cast(KT("meta__count"), BigIntegerField()), Value(1))))
    )
    baseline = sum(rows for when, rows in counts.items() if when != day) / baseline_days
    return counts.get(day, 0), baseline


def _spike_drafts(day: date) -> list[Draft]:
    rejected = AuditEvent.objects.filter(action=actions.WEBHOOK_REJECTED.name)
    signatures = rejected.filter(meta__problem__in=SIGNATURE_PROBLEMS)
    drafts = []
    for kind, queryset, what in (
        (FindingKind.WEBHOOK_REJECTED_SPIKE, rejected, "rejected webhooks"),
        (FindingKind.INVALID_SIGNATURE_SPIKE, signatures, "invalid or missing signatures"),
    ):
        count, baseline = _per_day(day, queryset)
        threshold = settings.AUDIT_REVIEW_SPIKE_FACTOR * baseline
        if count > threshold and count > settings.AUDIT_REVIEW_SPIKE_FLOOR:
            start, end = day_bounds(day)
            rows = _linked(
                queryset.filter(occurred_at__gte=start, occurred_at__lt=end).order_by("sequence")
            )
            summary = (
                f"{count} {what}, against a mean of {baseline:.1f} a day over the "
                f"{settings.AUDIT_REVIEW_BASELINE_DAYS} days before."
            )
            drafts.append(Draft(kind, summary, rows))
    return drafts


def _dead_letter_drafts(day: date) -> list[Draft]:
    reprocessed = _linked(_rows_of(day, actions.DEADLETTER_REPROCESSED.name))
    waiting = dead_letters_waiting() or 0
    if not waiting and not reprocessed:
        return []
    summary = f"{waiting} dead letters waiting; {len(reprocessed)} reprocessed by staff that day."
    return [Draft(FindingKind.DEAD_LETTERS, summary, reprocessed)]


def _outside_business_hours(moment: datetime) -> bool:
    start, end = settings.AUDIT_REVIEW_BUSINESS_START_HOUR, settings.AUDIT_REVIEW_BUSINESS_END_HOUR
    moment = moment.astimezone(UTC)
    return moment.weekday() >= 5 or not start <= moment.hour < end


def _manual_change_drafts(day: date) -> list[Draft]:
    rows = _rows_of(day, *MANUAL_GRANTS, *MANUAL_REVOKES).filter(actor_type=ActorType.USER)
    outside, own = [], []
    by_actor: dict[tuple[str, bool], list[Link]] = defaultdict(list)
    names: dict[str, str] = {}
    for sequence, occurred_at, action, actor_id, actor_name, meta in rows.values_list(
        "sequence", "occurred_at", "action", "actor_id", "actor_name", "meta"
    ):
        link = (sequence, actor_id)
        names[actor_id] = actor_name
        by_actor[(actor_id, action in MANUAL_GRANTS)].append(link)
        if _outside_business_hours(occurred_at):
            outside.append(link)
        if str(meta.get("user_id", "")) == actor_id:
            own.append(link)
    drafts = []
    if outside:
        drafts.append(
            Draft(
                FindingKind.GRANT_OUTSIDE_HOURS,
                f"{len(outside)} manual grants or revokes outside business hours "
                f"({settings.AUDIT_REVIEW_BUSINESS_START_HOUR}:00-"
                f"{settings.AUDIT_REVIEW_BUSINESS_END_HOUR}:00 UTC, Monday to Friday).",
                outside,
            )
        )
    for (actor_id, grants), links in sorted(by_actor.items()):
        if len(links) > settings.AUDIT_REVIEW_BULK_THRESHOLD:
            what = "grants" if grants else "revokes"
            summary = (
                f"{len(links)} manual {what} by {names[actor_id] or actor_id} (user "
                f"{actor_id}), over the threshold of {settings.AUDIT_REVIEW_BULK_THRESHOLD}."
            )
            drafts.append(Draft(FindingKind.GRANT_BULK, summary, links))
    if own:
        drafts.append(
            Draft(
                FindingKind.GRANT_OWN_ACCOUNT,
                f"{len(own)} grants or revokes made by staff on their own account.",
                own,
            )
        )
    return drafts


def _access_drafts(day: date) -> list[Draft]:
    drafts = []
    failed = _linked(_rows_of(day, actions.LOGIN_FAILED.name))
    if len(failed) >= settings.AUDIT_REVIEW_FAILED_SIGNIN_THRESHOLD:
        drafts.append(
            Draft(
                FindingKind.SIGN_IN_FAILURES,
                f"{len(failed)} failed sign-ins (threshold "
                f"{settings.AUDIT_REVIEW_FAILED_SIGNIN_THRESHOLD}).",
                failed,
            )
        )
    for kind, action, what in (
        (FindingKind.LOCKOUTS, actions.LOGIN_LOCKED_OUT, "locked-out sign-in attempts"),
        (FindingKind.ROLE_CHANGES, actions.ROLE_CHANGED, "role changes"),
        (FindingKind.SECOND_FACTOR_RESETS, actions.SECOND_FACTOR_RESET, "second-factor resets"),
    ):
        rows = _linked(_rows_of(day, action.name))
        if rows:
            drafts.append(Draft(kind, f"{len(rows)} {what}.", rows))
    return drafts


def daily_review_create(*, day: date, now: datetime | None = None) -> DailyReview:
    """Review one UTC day (idempotent: a day already reviewed is returned as it is).

    Also fills the day's pre-aggregated counts for the dashboard's charts.
    """
    existing = DailyReview.objects.filter(day=day).first()
    if existing is not None:
        return existing
    # Review the chain as it stands: every committed row sealed first (a no-op when the sealer
    # keeps up, as it does in production).
    audit_seal_pending()
    now = now or datetime.now(UTC)
    start, end = day_bounds(day)
    span = AuditEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end).aggregate(
        first=Min("sequence"), last=Max("sequence"), rows=Count("id")
    )
    review = DailyReview(
        day=day,
        rows=span["rows"],
        first_sequence=span["first"],
        last_sequence=span["last"],
        parameters=review_parameters(),
    )
    chain_drafts, review.chain_ok = _chain_drafts(review, now)
    drafts = [
        *chain_drafts,
        *_spike_drafts(day),
        *_dead_letter_drafts(day),
        *_manual_change_drafts(day),
        *_access_drafts(day),
    ]
    daily_counts_fill(day=day)
    with transaction.atomic():
        review.save()
        ReviewFinding.objects.bulk_create([draft.finding(review) for draft in drafts])
        audit_event_record(
            action=actions.REVIEW_CREATED.name,
            target=Target("daily_review", str(review.pk), str(review)),
            meta={
                "day": day.isoformat(),
                "findings": len(drafts),
                "sequence_from": review.first_sequence,
                "sequence_to": review.last_sequence,
            },
        )
    return review
