"""The staff access review (PCI DSS 7.2.4, SOC 2 CC6.2/CC7.2, SOX ITGC user access review).

Every AUDIT_ACCESS_REVIEW_INTERVAL_DAYS a Finance reviewer starts a review: every staff account
is listed as it stands (role, groups, last sign-in, second factor, permissions). Each account is
kept or removed with a reason, by someone other than its owner; removal deactivates it at once.
Completion binds the review to the newest signed checkpoint. Every step is an audit row written
in the same transaction as the change. These services are the only writers of AccessReview and
AccessReviewDecision.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit import actions, metrics
from audit.errors import AccessReviewRefused, AccessReviewSelfDecision
from audit.models import AccessDecision, AccessReview, AccessReviewDecision, AuditCheckpoint
from audit.services import Target, audit_event_record
from audit.staff_accounts import staff_account_of, staff_account_remove, staff_users
from config.context import Actor

DECISIONS = {
    AccessDecision.KEEP: actions.ACCESS_REVIEW_KEPT,
    AccessDecision.REMOVE: actions.ACCESS_REVIEW_REMOVED,
}


@dataclass(frozen=True)
class AccessReviewStatus:
    last_completed: AccessReview | None
    open_review: AccessReview | None
    due_at: datetime | None  # None: never completed, due now
    overdue: bool


def _target(review: AccessReview) -> Target:
    return Target("access_review", str(review.pk), str(review))


def access_review_start(*, user: User) -> AccessReview:
    """Open a review listing every active staff account; refused while another is open."""
    try:
        with transaction.atomic():
            review = AccessReview.objects.create(
                started_at=timezone.now(), interval_days=settings.AUDIT_ACCESS_REVIEW_INTERVAL_DAYS
            )
            accounts = [staff_account_of(account) for account in staff_users()]
            AccessReviewDecision.objects.bulk_create(
                AccessReviewDecision(review=review, **vars(account)) for account in accounts
            )
            row = audit_event_record(
                action=actions.ACCESS_REVIEW_STARTED.name,
                actor=Actor(kind="user", user_id=user.pk),
                actor_user=user,
                target=_target(review),
                meta={"access_review_id": review.pk, "accounts": len(accounts)},
            )
            review.started_at = row.occurred_at
            review.started_by_id, review.started_by_name = row.actor_id, row.actor_name
            review.save()
    except IntegrityError:
        raise AccessReviewRefused(
            "An access review is already open: finish it before starting another."
        ) from None
    return review


def access_review_decide(
    *, decision: AccessReviewDecision, user: User, outcome: str, reason: str
) -> AccessReviewDecision:
    """Keep or remove one account, with a reason; removal deactivates it, ends its sessions
    and revokes its API tokens. Nobody decides on their own account."""
    reason = (reason or "").strip()
    if outcome not in DECISIONS:
        raise AccessReviewRefused("An account is either kept or removed.")
    chosen = AccessDecision(outcome)
    if not reason:
        raise AccessReviewRefused("Give a reason: it is the evidence of the review.")
    with transaction.atomic():
        decision = (
            AccessReviewDecision.objects.select_for_update()
            .select_related("review")
            .get(pk=decision.pk)
        )
        if decision.review.completed_at is not None:
            raise AccessReviewRefused(f"The {decision.review} is already completed.")
        if decision.user_id == str(user.pk):
            raise AccessReviewSelfDecision(
                "You cannot decide on your own account: another Finance reviewer must."
            )
        if decision.decision != AccessDecision.PENDING:
            raise AccessReviewRefused(f"{decision.username} has already been decided.")
        # The decision's row first, then the deactivation's (cause before effect).
        row = audit_event_record(
            action=DECISIONS[chosen].name,
            actor=Actor(kind="user", user_id=user.pk),
            actor_user=user,
            target=Target("user", decision.user_id, f"user {decision.username}"),
            reason=reason,
            meta={
                "access_review_id": decision.review_id,
                "user_id": decision.user_id,
                "decision": chosen.value,
            },
        )
        if chosen == AccessDecision.REMOVE:
            staff_account_remove(user_id=decision.user_id)
        decision.decision = chosen
        decision.reason = reason[:1000]
        decision.decided_at = row.occurred_at
        decision.decided_by_id, decision.decided_by_name = row.actor_id, row.actor_name
        decision.decision_row_id = row.pk
        decision.save()
    return decision


def access_review_complete(*, review: AccessReview, user: User) -> AccessReview:
    """Close the review once every account is decided, bound to the newest signed checkpoint."""
    with transaction.atomic():
        review = AccessReview.objects.select_for_update().get(pk=review.pk)
        if review.completed_at is not None:
            raise AccessReviewRefused(f"The {review} is already completed.")
        counts = review.decisions.aggregate(
            accounts=Count("id"),
            pending=Count("id", filter=Q(decision=AccessDecision.PENDING)),
            kept=Count("id", filter=Q(decision=AccessDecision.KEEP)),
            removed=Count("id", filter=Q(decision=AccessDecision.REMOVE)),
        )
        if counts["pending"]:
            raise AccessReviewRefused(
                f"{counts['pending']} accounts are still undecided: keep or remove each first."
            )
        checkpoint = AuditCheckpoint.objects.order_by("-id").first()
        if checkpoint is None:
            raise AccessReviewRefused(
                "No signed checkpoint yet: sign one (manage.py audit_checkpoint) and complete "
                "again."
            )
        row = audit_event_record(
            action=actions.ACCESS_REVIEW_COMPLETED.name,
            actor=Actor(kind="user", user_id=user.pk),
            actor_user=user,
            target=_target(review),
            meta={
                "access_review_id": review.pk,
                "accounts": counts["accounts"],
                "kept": counts["kept"],
                "removed": counts["removed"],
                "checkpoint_id": checkpoint.pk,
                "checkpoint_sequence": checkpoint.sequence,
                "checkpoint_hash": checkpoint.hash,
            },
        )
        review.completed_at = row.occurred_at
        review.completed_by_id, review.completed_by_name = row.actor_id, row.actor_name
        review.completion_row_id = row.pk
        review.checkpoint_id = checkpoint.pk
        review.checkpoint_sequence = checkpoint.sequence
        review.checkpoint_hash = checkpoint.hash
        review.save()
        transaction.on_commit(access_review_gauge_refresh)
    return review


def access_review_status(*, now: datetime | None = None) -> AccessReviewStatus:
    """When the next review is due: the interval after the last completed one (now, if none)."""
    now = now or timezone.now()
    completed = AccessReview.objects.filter(completed_at__isnull=False)
    last = completed.order_by("-completed_at").first()
    # The filter makes completed_at set; the type checker sees the nullable column.
    last_at = last.completed_at if last else None
    due_at = (
        last_at + timedelta(days=settings.AUDIT_ACCESS_REVIEW_INTERVAL_DAYS) if last_at else None
    )
    return AccessReviewStatus(
        last_completed=last,
        open_review=AccessReview.objects.filter(completed_at__isnull=True).first(),
        due_at=due_at,
        overdue=due_at is None or due_at <= now,
    )


def access_review_gauge_refresh() -> int:
    """Set tollgate_audit_access_review_overdue (beat, and after each completion)."""
    overdue = int(access_review_status().overdue)
    metrics.ACCESS_REVIEW_OVERDUE.set(overdue)
    return overdue
