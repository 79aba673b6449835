"""Second approver for bulk manual grants (ENTITLEMENTS_BULK_APPROVAL_THRESHOLD).

A grant that would create more entitlements than the threshold is stored as a pending
GrantRequest; another staff member who may grant approves it (the grant is then made, in one
transaction with the decision) or rejects it. Requests, approvals and rejections are announced
(entitlements.signals) and audited like the grants themselves.
"""

from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from config.context import Actor
from entitlements import services, signals
from entitlements.errors import GrantRequestNotPending, InvalidExpiry, SecondApproverRequired
from entitlements.models import Entitlement, GrantRequest


def grant_request_create(
    *,
    users: list[User],
    requested_by: User | None,
    actor: Actor,
    reason: str,
    feature_key: str,
    plan_code: str,
    expires_at: datetime | None,
    entitlement_count: int,
) -> GrantRequest:
    """Store a bulk grant for approval (committed at once: the requester gets its id)."""
    with transaction.atomic():
        grant_request = GrantRequest.objects.create(
            requested_by=requested_by,
            user_ids=sorted(user.pk for user in users),
            feature_key=feature_key,
            plan_code=plan_code,
            expires_at=expires_at,
            reason=reason,
            entitlement_count=entitlement_count,
        )
        signals.grant_requested.send(sender=GrantRequest, grant_request=grant_request, actor=actor)
    return grant_request


def _pending_locked(grant_request: GrantRequest, approver: User | None) -> GrantRequest:
    locked = GrantRequest.objects.select_for_update().get(pk=grant_request.pk)
    if locked.status != GrantRequest.Status.PENDING:
        raise GrantRequestNotPending(f"Grant request #{locked.pk} is already {locked.status}.")
    if approver is None or approver.pk == locked.requested_by_id:
        raise SecondApproverRequired(
            f"Grant request #{locked.pk} needs a staff member other than its requester."
        )
    if not (approver.is_active and approver.has_perm("entitlements.grant_entitlement")):
        raise SecondApproverRequired(
            f"Grant request #{locked.pk} is decided by a staff member who may grant."
        )
    return locked


def grant_request_approve(
    *, grant_request: GrantRequest, approver: User, actor: Actor
) -> list[Entitlement]:
    """Make the requested grant, attributed to the requester and approved by `approver` (who
    is neither the requester nor, unless self-grants are allowed, one of the users)."""
    services.staff_self_service_refuse(
        staff=approver, user_ids=grant_request.user_ids, change="grant", actor=actor
    )
    with transaction.atomic():
        locked = _pending_locked(grant_request, approver)
        if locked.expires_at is not None and locked.expires_at <= timezone.now():
            raise InvalidExpiry("The requested expiry has passed: reject it and ask again.")
        plan, features = services.manual_grant_features(
            feature_key=locked.feature_key or None, plan_code=locked.plan_code or None
        )
        users = list(get_user_model().objects.filter(pk__in=locked.user_ids).order_by("pk"))
        rows = [
            services.entitlement_new(
                user=user,
                feature=feature,
                source=Entitlement.Source.MANUAL,
                plan=plan,
                expires_at=locked.expires_at,
                reason=locked.reason,
                granted_by=locked.requested_by,
            )
            for user in users
            for feature in features
        ]
        created = services.entitlements_create(rows, actor=actor)
        _decide(locked, GrantRequest.Status.APPROVED, approver)
        signals.grant_request_approved.send(sender=GrantRequest, grant_request=locked, actor=actor)
    return created


def grant_request_reject(
    *, grant_request: GrantRequest, approver: User, actor: Actor
) -> GrantRequest:
    with transaction.atomic():
        locked = _pending_locked(grant_request, approver)
        _decide(locked, GrantRequest.Status.REJECTED, approver)
        signals.grant_request_rejected.send(sender=GrantRequest, grant_request=locked, actor=actor)
    return locked


def _decide(grant_request: GrantRequest, status: str, approver: User) -> None:
    grant_request.status = status
    grant_request.decided_by = approver
    grant_request.decided_at = timezone.now()
    grant_request.save(update_fields=["status", "decided_by", "decided_at"])
