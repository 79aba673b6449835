"""Human sign-off of the daily review (PCI DSS 10.4.1, 10.4.3): findings worked, day signed.

Each step is an audit row written in the same transaction as the change it records, so the
trail itself shows who accepted or escalated what, and who signed which day against which
checkpoint. These services are the only writers of DailyReview and ReviewFinding after the
review task.
"""

from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from audit import actions, metrics
from audit.errors import ReviewRefused, ReviewSelfSignOff
from audit.models import AuditCheckpoint, DailyReview, FindingStatus, ReviewFinding
from audit.services import Target, audit_event_record

DECISIONS = {
    FindingStatus.ACCEPTED: actions.REVIEW_FINDING_ACCEPTED,
    FindingStatus.ESCALATED: actions.REVIEW_FINDING_ESCALATED,
}


def review_finding_work(
    *, finding: ReviewFinding, user: User, decision: str, note: str
) -> ReviewFinding:
    """Accept (with a note saying why it is fine) or escalate (with a note saying to whom)."""
    note = (note or "").strip()
    if decision not in DECISIONS:
        raise ReviewRefused("A finding is either accepted or escalated.")
    status = FindingStatus(decision)
    if not note:
        raise ReviewRefused("Say why in a note: it is the evidence of the review.")
    with transaction.atomic():
        finding = (
            ReviewFinding.objects.select_for_update().select_related("review").get(pk=finding.pk)
        )
        if finding.review.signed_off_at is not None:
            raise ReviewRefused(f"The {finding.review} is already signed off.")
        if finding.status != FindingStatus.OPEN:
            raise ReviewRefused("This finding has already been worked.")
        row = audit_event_record(
            action=DECISIONS[status].name,
            actor_user=user,
            target=Target("review_finding", str(finding.pk), str(finding)),
            reason=note,
            meta={
                "day": finding.review.day.isoformat(),
                "finding_id": finding.pk,
                "kind": finding.kind,
            },
        )
        finding.status = status
        finding.note = note[:1000]
        finding.worked_at = row.occurred_at
        finding.worked_by_id = row.actor_id
        finding.worked_by_name = row.actor_name
        finding.worked_row_id = row.pk
        finding.save()
    return finding


def _covering_checkpoint(review: DailyReview) -> AuditCheckpoint:
    checkpoint = AuditCheckpoint.objects.order_by("-id").first()
    needed = review.last_sequence or 0
    if checkpoint is None or checkpoint.sequence < needed:
        raise ReviewRefused(
            f"No signed checkpoint covers the day yet (its last row is #{needed}): sign one "
            "(manage.py audit_checkpoint) and sign off again."
        )
    return checkpoint


def daily_review_sign_off(*, review: DailyReview, user: User) -> DailyReview:
    """Sign the day off: every finding worked, none of them the signer's own actions, bound
    to the newest checkpoint (which covers the day's last row)."""
    with transaction.atomic():
        review = DailyReview.objects.select_for_update().get(pk=review.pk)
        if review.signed_off_at is not None:
            raise ReviewRefused(f"The {review} is already signed off.")
        findings = list(review.findings.all())
        own = [finding for finding in findings if str(user.pk) in finding.actor_ids]
        if own:
            kinds = ", ".join(sorted({finding.get_kind_display() for finding in own}))
            raise ReviewSelfSignOff(
                f"You cannot sign off the {review}: its findings include your own actions "
                f"({kinds}). Another Finance reviewer must sign it off."
            )
        open_findings = [finding for finding in findings if finding.status == FindingStatus.OPEN]
        if open_findings:
            raise ReviewRefused(
                f"{len(open_findings)} findings are still open: accept or escalate each first."
            )
        checkpoint = _covering_checkpoint(review)
        row = audit_event_record(
            action=actions.REVIEW_SIGNED_OFF.name,
            actor_user=user,
            target=Target("daily_review", str(review.pk), str(review)),
            meta={
                "day": review.day.isoformat(),
                "findings": len(findings),
                "checkpoint_id": checkpoint.pk,
                "checkpoint_sequence": checkpoint.sequence,
                "checkpoint_hash": checkpoint.hash,
            },
        )
        review.signed_off_at = row.occurred_at
        review.signed_off_by_id = row.actor_id
        review.signed_off_by_name = row.actor_name
        review.sign_off_row_id = row.pk
        review.checkpoint_id = checkpoint.pk
        review.checkpoint_sequence = checkpoint.sequence
        review.checkpoint_hash = checkpoint.hash
        review.save()
        transaction.on_commit(review_overdue_gauge_refresh)
    return review


def business_days_between(first: date, last: date) -> int:
    """Monday-to-Friday days after `first`, up to and including `last`."""
    return sum(
        1
        for offset in range(1, (last - first).days + 1)
        if (first + timedelta(days=offset)).weekday() < 5
    )


def reviews_overdue(*, today: date | None = None) -> list[DailyReview]:
    """Unsigned reviews more than AUDIT_REVIEW_SIGNOFF_BUSINESS_DAYS business days old."""
    today = today or datetime.now(UTC).date()
    allowed = settings.AUDIT_REVIEW_SIGNOFF_BUSINESS_DAYS
    unsigned = DailyReview.objects.filter(signed_off_at__isnull=True, day__lt=today)
    return [
        review
        for review in unsigned.order_by("day")
        if business_days_between(review.day, today) > allowed
    ]


def review_overdue_gauge_refresh() -> int:
    """Set tollgate_audit_reviews_overdue from the database (beat, and after each sign-off)."""
    count = len(reviews_overdue())
    metrics.REVIEWS_OVERDUE.set(count)
    return count
