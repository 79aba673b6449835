"""Stored subscription state -> the Stripe grants it wants -> live entitlement rows.

`desired_for_state` decides from the state row alone (so reconciliation can recompute it);
`subscription_sync` grants, extends and revokes the subscription's `source="stripe"` rows to
match. Manual grants are never touched here.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from config.context import Actor
from entitlements import services
from entitlements import stripe_payloads as payloads
from entitlements.models import (
    CustomerLink,
    CustomerSummary,
    Entitlement,
    Feature,
    Plan,
    SubscriptionState,
)


@dataclass(frozen=True)
class Wanted:
    feature: Feature
    expires_at: datetime
    plan: Plan | None


def _when(seconds: int | float) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)


def state_merge(state: SubscriptionState, values: dict, version: tuple[int, str]) -> bool:
    """Merge one event's values: each field keeps the value of its newest event (created, id)."""
    changed = False
    for name, value in values.items():
        current = state.version(name)
        if current is None or tuple(current) < version:
            state.fields[name] = [value, version[0], version[1]]
            changed = True
    if (state.last_event_created, state.last_event_id) < version:
        state.last_event_created, state.last_event_id = version
    return changed


def desired_for_state(state: SubscriptionState) -> dict[str, Wanted]:
    """{lookup_key: Wanted} for a subscription, from its stored state alone."""
    status = state.value("status")
    if state.value("deleted") or state.value("reversal") or status not in payloads.LIVE_STATUSES:
        return {}
    plan = Plan.objects.filter(code=state.value("plan_code") or "").first()
    summary = CustomerSummary.objects.filter(stripe_customer_id=state.stripe_customer_id).first()
    if summary is not None:
        features = list(Feature.objects.filter(lookup_key__in=summary.lookup_keys))
    elif plan is not None:
        features = list(plan.features.all())
    else:
        return {}
    grace = timedelta(days=plan.grace_days if plan else 0)
    failed_at = state.value("payment_failed_at")
    period_end = state.value("period_end")
    if status == "past_due" or failed_at:
        # Payment failed: access continues through the grace days, then lapses by itself.
        started = failed_at or state.version("status")[0]
        expires_at = _when(started) + grace
    elif period_end:
        expires_at = _when(period_end)
        if not state.value("cancel_at_period_end"):
            expires_at += grace
    else:
        duration = plan.default_duration_days if plan else 30
        expires_at = _when(state.version("status")[0]) + timedelta(days=duration)
    return {feature.lookup_key: Wanted(feature, expires_at, plan) for feature in features}


@dataclass
class SyncWork:
    """What it takes to bring a subscription's live Stripe rows in line with its state."""

    revoke: list
    change: list  # (row, Wanted)
    create: list  # Wanted


def _reconciliation(state: SubscriptionState, *, lock: bool) -> SyncWork:
    wanted = desired_for_state(state)
    live = Entitlement.objects.filter(
        source=Entitlement.Source.STRIPE,
        stripe_subscription_id=state.stripe_subscription_id,
        revoked_at__isnull=True,
    ).select_related("feature")
    if lock:
        live = live.select_for_update(of=("self",))
    work = SyncWork(revoke=[], change=[], create=[])
    for row in live.order_by("id"):
        target = wanted.pop(row.feature.lookup_key, None)
        if target is None:
            work.revoke.append(row)
        elif row.expires_at != target.expires_at or row.plan_id != getattr(target.plan, "pk", None):
            work.change.append((row, target))
    work.create = list(wanted.values())
    return work


def subscription_sync(
    *, state: SubscriptionState, actor: Actor, reason: str, source_event_id: str | None
) -> dict[str, int]:
    """Bring the live Stripe rows of a subscription in line with its stored state."""
    link = CustomerLink.objects.filter(stripe_customer_id=state.stripe_customer_id)
    link = link.select_related("user").first()
    if link is None:
        return {"granted": 0, "extended": 0, "revoked": 0}
    work = _reconciliation(state, lock=True)
    said = {"actor": actor, "reason": reason, "source_event_id": source_event_id}
    for row in work.revoke:
        services.entitlement_revoke(entitlement=row, **said)
    for row, target in work.change:
        services.entitlement_extend(
            entitlement=row, expires_at=target.expires_at, plan=target.plan, **said
        )
    now = timezone.now()
    created = [
        services.entitlement_new(
            user=link.user,
            feature=target.feature,
            source=Entitlement.Source.STRIPE,
            plan=target.plan,
            stripe_subscription_id=state.stripe_subscription_id,
            expires_at=target.expires_at,
            reason=reason,
            source_event_id=source_event_id,
            # A grant computed from old events may already be over: it still starts before
            # it ends, so the row is consistent and simply inactive.
            starts_at=min(now, target.expires_at - timedelta(seconds=1)),
        )
        for target in work.create
    ]
    services.entitlements_create(created, actor=actor)
    return {"granted": len(work.create), "extended": len(work.change), "revoked": len(work.revoke)}


def subscription_drift(*, state: SubscriptionState) -> list[str]:
    """How the live Stripe rows of a subscription differ from its stored state ([] = none)."""
    if not CustomerLink.objects.filter(stripe_customer_id=state.stripe_customer_id).exists():
        return []
    work = _reconciliation(state, lock=False)
    drift = [f"{row.feature.lookup_key}: live but not wanted" for row in work.revoke]
    drift += [
        f"{row.feature.lookup_key}: expires {row.expires_at:%Y-%m-%d %H:%M}, "
        f"wanted {target.expires_at:%Y-%m-%d %H:%M}"
        for row, target in work.change
    ]
    drift += [f"{target.feature.lookup_key}: wanted but missing" for target in work.create]
    return drift


def plan_subscribers_resync(*, plan_code: str, actor: Actor) -> int:
    """After staff changed a plan: bring every subscription on it in line (audited)."""
    synced = 0
    states = SubscriptionState.objects.filter(fields__plan_code__0=plan_code)
    for state_id in states.values_list("pk", flat=True).order_by("pk"):
        with transaction.atomic():
            state = SubscriptionState.objects.select_for_update().get(pk=state_id)
            subscription_sync(
                state=state, actor=actor, reason=f"plan {plan_code} changed", source_event_id=None
            )
        synced += 1
    return synced
