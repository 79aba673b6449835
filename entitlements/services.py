"""Writes of entitlements: grants, extensions, revocations, lapses and plan edits.

Every change sends its entitlements.signals signal inside the transaction of the change (audit
records it there) and replaces the user's cached feature set when the transaction commits.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from config.context import Actor
from entitlements import access, metrics, signals
from entitlements.errors import InvalidExpiry, NothingToRevoke, ReasonRequired, UnknownFeature
from entitlements.models import Entitlement, Feature, Plan, PlanFeature
from entitlements.selectors import active_entitlements

_CHANGE_NAMES = {
    signals.entitlement_granted: "granted",
    signals.entitlement_extended: "extended",
    signals.entitlement_revoked: "revoked",
    signals.entitlement_lapsed: "lapsed",
}


def _announce(
    signal, entitlement: Entitlement, *, actor: Actor, reason: str, source_event_id, **extra
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
    user,
    feature: Feature,
    source: str,
    expires_at: datetime | None,
    reason: str,
    plan: Plan | None = None,
    stripe_subscription_id: str = "",
    granted_by=None,
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
    Entitlement.objects.bulk_create(entitlements)
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
    entitlement.save(update_fields=update_fields)
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
    revoked_by=None,
    source_event_id: str | None = None,
) -> Entitlement:
    """Revoke one live entitlement (kept as history) and send entitlement_revoked."""
    reason = _require_reason(reason)
    entitlement.revoked_at = timezone.now()
    entitlement.revoked_by = revoked_by
    entitlement.revoke_reason = reason[:500]
    entitlement.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    _announce(
        signals.entitlement_revoked,
        entitlement,
        actor=actor,
        reason=reason,
        source_event_id=source_event_id,
    )
    return entitlement


@transaction.atomic
def entitlement_grant_manual(
    *,
    user,
    granted_by,
    actor: Actor,
    reason: str,
    feature_key: str | None = None,
    plan_code: str | None = None,
    expires_at: datetime | None = None,
) -> list[Entitlement]:
    """Staff grant one feature or every feature of a plan; Stripe events never remove it."""
    reason = _require_reason(reason)
    if bool(feature_key) == bool(plan_code):
        raise UnknownFeature("Give exactly one of a feature lookup key or a plan code.")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidExpiry()
    plan = None
    if plan_code:
        plan = Plan.objects.filter(code=plan_code).first()
        if plan is None:
            raise UnknownFeature(f"No plan with code {plan_code!r}.")
        features = list(plan.features.all())
    else:
        features = list(Feature.objects.filter(lookup_key=feature_key))
        if not features:
            raise UnknownFeature(f"No feature with lookup key {feature_key!r}.")
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
        for feature in features
    ]
    return entitlements_create(rows, actor=actor)


@transaction.atomic
def entitlements_revoke_for_user(
    *,
    user,
    revoked_by,
    actor: Actor,
    reason: str,
    feature_key: str | None = None,
    all_manual: bool = False,
) -> list[Entitlement]:
    """Staff revoke: every live grant of one feature, or every live manual grant."""
    reason = _require_reason(reason)
    if bool(feature_key) == bool(all_manual):
        raise UnknownFeature("Give exactly one of a feature lookup key or all manual grants.")
    live = active_entitlements(now=timezone.now()).filter(user=user)
    if feature_key:
        live = live.filter(feature__lookup_key=feature_key)
    else:
        live = live.filter(source=Entitlement.Source.MANUAL)
    rows = list(live.select_for_update().order_by("id"))
    if not rows:
        raise NothingToRevoke()
    return [
        entitlement_revoke(entitlement=row, actor=actor, reason=reason, revoked_by=revoked_by)
        for row in rows
    ]


@transaction.atomic
def entitlements_revoke_selected(
    *, entitlement_ids: list[int], revoked_by, actor: Actor, reason: str
) -> list[Entitlement]:
    """The admin's bulk revoke: live rows among the ids are revoked, others left as they are."""
    reason = _require_reason(reason)
    rows = active_entitlements(now=timezone.now()).filter(pk__in=entitlement_ids)
    return [
        entitlement_revoke(entitlement=row, actor=actor, reason=reason, revoked_by=revoked_by)
        for row in rows.select_for_update().order_by("id")
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
) -> dict:
    """Save staff edits of a plan (and its feature set) and send plan_changed with the diff."""
    changes: dict = {}
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
