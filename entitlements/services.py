"""Writes of entitlements: grants, extensions, revocations, lapses and plan edits.

Every change sends its entitlements.signals signal inside the transaction of the change (audit
records it there) and replaces the user's cached feature set when the transaction commits.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from config.context import Actor
from entitlements import access, grant_batch, metrics, signals
from entitlements.errors import (
    ApprovalRequired,
    InvalidExpiry,
    NothingToRevoke,
    ReasonRequired,
    SelfGrantRefused,
    UnknownFeature,
)
from entitlements.models import Entitlement, Feature, FeatureBlock, Plan, PlanFeature
from entitlements.selectors import active_entitlements

_CHANGE_NAMES = {
    signals.entitlement_granted: "granted",
    signals.entitlement_extended: "extended",
    signals.entitlement_revoked: "revoked",
    signals.entitlement_lapsed: "lapsed",
}


def _announce(
    signal: Signal,
    entitlement: Entitlement,
    *,
    actor: Actor,
    reason: str,
    source_event_id: str | None,
    **extra: object,
) -> None:
    """Metric, cache invalidation on commit, and the signal audit records (in this transaction)."""
    change = _CHANGE_NAMES[signal]
    metrics.CHANGES.labels(change=change, source=entitlement.source).inc()
    user_id = entitlement.user_id
    if change != "lapsed":  # a lapse changes nothing a cached expiry does not already say
        transaction.on_commit(lambda: access.invalidate(user_id))
    signal.send(
        sender=Entitlement,
        entitlement=entitlement,
        actor=actor,
        reason=reason,
        source_event_id=source_event_id,
        **extra,
    )


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("Say why: the reason is kept in the audit trail.")
    return reason


def entitlement_new(
    *,
    user: User,
    feature: Feature,
    source: str,
    expires_at: datetime | None,
    reason: str,
    plan: Plan | None = None,
    stripe_subscription_id: str = "",
    granted_by: User | None = None,
    source_event_id: str | None = None,
    starts_at: datetime | None = None,
) -> Entitlement:
    """An unsaved entitlement row, for entitlements_create."""
    return Entitlement(
        user=user,
        feature=feature,
        source=source,
        plan=plan,
        stripe_subscription_id=stripe_subscription_id,
        granted_by=granted_by,
        reason=reason,
        source_event_id=source_event_id or "",
        starts_at=starts_at or timezone.now(),
        expires_at=expires_at,
    )


def entitlements_create(entitlements: list[Entitlement], *, actor: Actor) -> list[Entitlement]:
    """Insert rows made by entitlement_new in one statement; entitlement_granted for each, with
    the reason and Stripe event each row carries."""
    for entitlement in entitlements:
        # Field validation only: the related rows were just loaded by the caller, and the
        # database enforces every constraint of Entitlement (re-checking them here cost one
        # query each, per feature granted, on the path of every Stripe event).
        entitlement.full_clean(
            exclude=["user", "feature", "plan", "granted_by", "revoked_by"],
            validate_unique=False,
            validate_constraints=False,
        )
    # In a batch of Stripe events, inserted with the batch's other grants (grant_batch.py).
    grant_batch.grants_insert(entitlements)
    for user in {entitlement.user for entitlement in entitlements}:
        access.forget_request_memo(user)
    for entitlement in entitlements:
        _announce(
            signals.entitlement_granted,
            entitlement,
            actor=actor,
            reason=entitlement.reason,
            source_event_id=entitlement.source_event_id or None,
        )
    return entitlements


def entitlement_extend(
    *,
    entitlement: Entitlement,
    expires_at: datetime,
    actor: Actor,
    reason: str,
    source_event_id: str | None = None,
    plan: Plan | None = None,
) -> Entitlement:
    """Move a live entitlement's expiry (later or earlier) and send entitlement_extended."""
    previous = entitlement.expires_at
    entitlement.expires_at = expires_at
    # A lapse already recorded no longer holds once the grant runs again.
    entitlement.lapse_recorded_at = None
    update_fields = ["expires_at", "lapse_recorded_at"]
    if entitlement.starts_at >= expires_at:
        # Moved to before it started (late events of a lapsed subscription): as when such a
        # grant is created, it starts just before it ends, consistent and simply inactive.
        entitlement.starts_at = expires_at - timedelta(seconds=1)
        update_fields.append("starts_at")
    if plan is not None and plan.pk != entitlement.plan_id:
        entitlement.plan = plan
        update_fields.append("plan")
    grant_batch.grant_changed(entitlement, update_fields=update_fields)
    _announce(
        signals.entitlement_extended,
        entitlement,
        actor=actor,
        reason=reason,
        source_event_id=source_event_id,
        previous_expires_at=previous,
    )
    return entitlement


def entitlement_revoke(
    *,
    entitlement: Entitlement,
    actor: Actor,
    reason: str,
    revoked_by: User | None = None,
    source_event_id: str | None = None,
) -> Entitlement:
    """Revoke one live entitlement (kept as history) and send entitlement_revoked."""
    reason = _require_reason(reason)
    entitlement.revoked_at = timezone.now()
    entitlement.revoked_by = revoked_by
    entitlement.revoke_reason = reason[:500]
    grant_batch.grant_changed(
        entitlement, update_fields=["revoked_at", "revoked_by", "revoke_reason"]
    )
    _announce(
        signals.entitlement_revoked,
        entitlement,
        actor=actor,
        reason=reason,
        source_event_id=source_event_id,
    )
    return entitlement


def staff_self_service_refuse(
    *, staff: User | None, user_ids: Iterable[int], change: str, actor: Actor
) -> None:
    """Separation of duties: nobody grants or revokes on their own account by hand (unless
    ENTITLEMENTS_ALLOW_SELF_GRANT). The refusal is announced (audit records it) before the
    change's transaction starts, so the row is kept although nothing changes."""
    if staff is None or settings.ENTITLEMENTS_ALLOW_SELF_GRANT or staff.pk not in set(user_ids):
        return
    signals.change_refused.send(
        sender=Entitlement,
        actor=actor,
        user_id=staff.pk,
        change=change,
        problem=SelfGrantRefused.slug,
    )
    raise SelfGrantRefused(f"You cannot {change} entitlements on your own account.")


def manual_grant_features(
    *, feature_key: str | None, plan_code: str | None
) -> tuple[Plan | None, list[Feature]]:
    """(plan or None, features) a manual grant names; UnknownFeature when it names nothing."""
    if bool(feature_key) == bool(plan_code):
        raise UnknownFeature("Give exactly one of a feature lookup key or a plan code.")
    if plan_code:
        plan = Plan.objects.filter(code=plan_code).first()
        if plan is None:
            raise UnknownFeature(f"No plan with code {plan_code!r}.")
        return plan, list(plan.features.all())
    features = list(Feature.objects.filter(lookup_key=feature_key))
    if not features:
        raise UnknownFeature(f"No feature with lookup key {feature_key!r}.")
    return None, features


def entitlement_grant_manual(
    *,
    user: User,
    granted_by: User | None,
    actor: Actor,
    reason: str,
    feature_key: str | None = None,
    plan_code: str | None = None,
    expires_at: datetime | None = None,
) -> list[Entitlement]:
    """Staff grant one feature or every feature of a plan to one user (see the bulk form)."""
    return entitlements_grant_manual(
        users=[user],
        granted_by=granted_by,
        actor=actor,
        reason=reason,
        feature_key=feature_key,
        plan_code=plan_code,
        expires_at=expires_at,
    )


def entitlements_grant_manual(
    *,
    users: list[User],
    granted_by: User | None,
    actor: Actor,
    reason: str,
    feature_key: str | None = None,
    plan_code: str | None = None,
    expires_at: datetime | None = None,
) -> list[Entitlement]:
    """Staff grant one feature or every feature of a plan to each user; Stripe events never
    remove it. Refused on the granter's own account; more than
    ENTITLEMENTS_BULK_APPROVAL_THRESHOLD entitlements become a pending GrantRequest instead
    (ApprovalRequired, carrying its id) that another staff member approves."""
    reason = _require_reason(reason)
    plan, features = manual_grant_features(feature_key=feature_key, plan_code=plan_code)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidExpiry()
    users = list({user.pk: user for user in users}.values())
    staff_self_service_refuse(
        staff=granted_by, user_ids=[user.pk for user in users], change="grant", actor=actor
    )
    count = len(users) * len(features)
    threshold = settings.ENTITLEMENTS_BULK_APPROVAL_THRESHOLD
    if threshold and count > threshold:
        from entitlements.approvals import grant_request_create

        pending = grant_request_create(
            users=users,
            requested_by=granted_by,
            actor=actor,
            reason=reason,
            feature_key=feature_key or "",
            plan_code=plan_code or "",
            expires_at=expires_at,
            entitlement_count=count,
        )
        raise ApprovalRequired(
            f"{count} entitlements exceed the approval threshold of {threshold}: grant request "
            f"#{pending.pk} waits for another staff member's approval.",
            approval_request=pending.pk,
        )
    with transaction.atomic():
        rows = [
            entitlement_new(
                user=user,
                feature=feature,
                source=Entitlement.Source.MANUAL,
                plan=plan,
                expires_at=expires_at,
                reason=reason,
                granted_by=granted_by,
            )
            for user in users
            for feature in features
        ]
        return entitlements_create(rows, actor=actor)


def _staff_revoke(
    *,
    row: Entitlement,
    actor: Actor,
    reason: str,
    revoked_by: User | None,
    block_until: datetime | None,
) -> Entitlement:
    """A staff revoke; of a Stripe grant it also blocks the feature (a revoke that sticks)."""
    if row.source == Entitlement.Source.STRIPE:
        feature_block(
            user=row.user, feature=row.feature, reason=reason, created_by=revoked_by,
            ends_at=block_until, actor=actor,
        )  # fmt: skip
    return entitlement_revoke(entitlement=row, actor=actor, reason=reason, revoked_by=revoked_by)


def feature_block(
    *,
    user: User,
    feature: Feature,
    reason: str,
    created_by: User | None,
    ends_at: datetime | None,
    actor: Actor,
) -> FeatureBlock:
    """Block a feature for a user against Stripe's grants until lifted or ended; the block in
    force already, if there is one, stays (the first reason is kept)."""
    reason = _require_reason(reason)
    if ends_at is not None and ends_at <= timezone.now():
        raise InvalidExpiry("A block's end must be in the future.")
    existing = FeatureBlock.objects.filter(user=user, feature=feature, lifted_at__isnull=True)
    block = existing.select_for_update().first()
    if block is not None:
        return block
    block = FeatureBlock.objects.create(
        user=user, feature=feature, reason=reason[:500], created_by=created_by, ends_at=ends_at
    )
    signals.feature_blocked.send(sender=FeatureBlock, block=block, actor=actor)
    return block


def entitlements_revoke_for_user(
    *,
    user: User,
    revoked_by: User | None,
    actor: Actor,
    reason: str,
    feature_key: str | None = None,
    all_manual: bool = False,
    block_until: datetime | None = None,
) -> list[Entitlement]:
    """Staff revoke: every live grant of one feature, or every live manual grant. A revoked
    Stripe grant stays revoked through Stripe's later events (see feature_block)."""
    reason = _require_reason(reason)
    if bool(feature_key) == bool(all_manual):
        raise UnknownFeature("Give exactly one of a feature lookup key or all manual grants.")
    staff_self_service_refuse(staff=revoked_by, user_ids=[user.pk], change="revoke", actor=actor)
    with transaction.atomic():
        live = active_entitlements(now=timezone.now()).filter(user=user)
        if feature_key:
            live = live.filter(feature__lookup_key=feature_key)
        else:
            live = live.filter(source=Entitlement.Source.MANUAL)
        rows = list(live.select_for_update(of=("self",)).select_related("user", "feature"))
        if not rows:
            raise NothingToRevoke()
        return [
            _staff_revoke(
                row=row, block_until=block_until, actor=actor, reason=reason, revoked_by=revoked_by
            )
            for row in sorted(rows, key=lambda row: row.pk)
        ]


def entitlements_revoke_selected(
    *,
    entitlement_ids: list[int],
    revoked_by: User | None,
    actor: Actor,
    reason: str,
    block_until: datetime | None = None,
) -> list[Entitlement]:
    """The admin's bulk revoke: live rows among the ids are revoked, others left as they are;
    revoked Stripe grants are blocked as in entitlements_revoke_for_user."""
    reason = _require_reason(reason)
    rows = active_entitlements(now=timezone.now()).filter(pk__in=entitlement_ids)
    owners = rows.values_list("user_id", flat=True).distinct()
    staff_self_service_refuse(staff=revoked_by, user_ids=list(owners), change="revoke", actor=actor)
    with transaction.atomic():
        rows = rows.select_for_update(of=("self",)).select_related("user", "feature")
        return [
            _staff_revoke(
                row=row, block_until=block_until, actor=actor, reason=reason, revoked_by=revoked_by
            )
            for row in rows.order_by("id")
        ]


def entitlement_lapses_record(*, now: datetime | None = None) -> int:
    """Record (once each) the grants whose expiry has passed. Access already ended at
    expires_at; this only makes the lapse visible in the audit trail and metrics."""
    now = now or timezone.now()
    recorded = 0
    with transaction.atomic():
        due = Entitlement.objects.filter(
            revoked_at__isnull=True, lapse_recorded_at__isnull=True, expires_at__lte=now
        )
        for entitlement in due.select_for_update(skip_locked=True).order_by("id")[:1000]:
            entitlement.lapse_recorded_at = now
            entitlement.save(update_fields=["lapse_recorded_at"])
            _announce(
                signals.entitlement_lapsed,
                entitlement,
                actor=Actor(kind="system"),
                reason="expired",
                source_event_id=None,
            )
            recorded += 1
    return recorded


@transaction.atomic
def plan_save(
    *, plan: Plan, changed_fields: list[str], features: list[Feature] | None, actor: Actor
) -> dict[str, object]:
    """Save staff edits of a plan (and its feature set) and send plan_changed with the diff."""
    changes: dict[str, object] = {}
    previous = Plan.objects.filter(pk=plan.pk).first() if plan.pk else None
    for name in changed_fields:
        if name != "features":
            changes[name] = [getattr(previous, name, None), getattr(plan, name)]
    plan.full_clean()
    plan.save()
    if features is not None:
        before = set(plan.features.values_list("lookup_key", flat=True))
        after = {feature.lookup_key for feature in features}
        PlanFeature.objects.filter(plan=plan).exclude(feature__in=features).delete()
        for feature in features:
            PlanFeature.objects.get_or_create(plan=plan, feature=feature)
        if before != after:
            changes["features"] = {
                "added": sorted(after - before),
                "removed": sorted(before - after),
            }
    if previous is None:
        changes["created"] = True
    if changes:
        signals.plan_changed.send(sender=Plan, plan=plan, actor=actor, changes=changes)
    if previous is not None and set(changes) & {"features", "grace_days", "default_duration_days"}:
        # Subscribers follow the plan as it is now; done after commit, in a task.
        from entitlements import tasks

        code = plan.code
        transaction.on_commit(lambda: tasks.resync_plan.delay(code, actor.kind, actor.user_id))
    return changes
