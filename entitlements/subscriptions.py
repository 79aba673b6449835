"""Stored subscription state -> the Stripe grants it wants -> live entitlement rows.

`desired_for_state` decides from the state row alone (so reconciliation can recompute it);
`subscription_sync` grants, extends and revokes the subscription's `source="stripe"` rows to
match. Manual grants are never touched here.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from config.context import Actor
from entitlements import grant_batch, ordering, selectors, services
from entitlements.models import (
    CustomerLink,
    CustomerReversal,
    CustomerSummary,
    Entitlement,
    Feature,
    FeatureBlock,
    Plan,
    SubscriptionState,
)

# Subscription statuses that give access (past_due only through the plan's grace days,
# trialing until the trial's end). incomplete, incomplete_expired, unpaid, paused and canceled
# give none.
LIVE_STATUSES = frozenset({"active", "trialing", "past_due"})

# How long an event's ordering facts stay in its subscription's journal after the newest event:
# Stripe retries a delivery for up to three days, so a late event still meets its second.
JOURNAL_WINDOW_SECONDS = 7 * 86400


@dataclass(frozen=True)
class Wanted:
    feature: Feature
    expires_at: datetime
    plan: Plan | None


def _when(seconds: int | float) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)


def state_merge(state: SubscriptionState, facts: ordering.Facts) -> bool:
    """Merge one event into the stored state; False for an event merged before.

    Each field keeps the value of the last event that carried it: by `created`, and inside one
    second in the order the payloads say (ordering.order_second), decided afresh over all the
    second's events each time one joins, so every delivery order ends in the same state."""
    journal = [ordering.Facts.from_json(entry) for entry in state.journal]
    if any(entry.event_id == facts.event_id for entry in journal):
        return False
    journal.append(facts)
    second = facts.created
    order = ordering.order_second(entry for entry in journal if entry.created == second)
    winners: dict[str, list[object]] = {}
    for entry in order.ordered:
        for name, value in entry.values.items():
            winners[name] = [value, second, entry.event_id]
    for name, winner in winners.items():
        current = state.fields.get(name)
        if current is None or current[1] <= second:
            state.fields[name] = winner
    newest = max(entry.created for entry in journal)
    state.journal = [
        entry.as_json() for entry in journal if entry.created >= newest - JOURNAL_WINDOW_SECONDS
    ]
    if order.ambiguous:
        state.unsettled_second = max(second, state.unsettled_second or second)
    elif state.unsettled_second == second:
        state.unsettled_second = None
    if facts.kind == "fetch" and (state.unsettled_second or second) <= second:
        state.unsettled_second = None
    if second >= state.last_event_created:
        state.last_event_created, state.last_event_id = second, order.ordered[-1].event_id
    return True


def is_reversed(state: SubscriptionState) -> bool:
    """A refund or dispute of the customer, made while this subscription existed, and not
    followed by a paid invoice of it (a reversal wins a tie: it follows the payment)."""
    since = max(state.value("sub_created") or 0, state.value("last_paid") or 0)
    return CustomerReversal.objects.filter(
        stripe_customer_id=state.stripe_customer_id, created__gte=since
    ).exists()


def desired_for_state(state: SubscriptionState) -> dict[str, Wanted]:
    """{lookup_key: Wanted} for a subscription, from its stored state alone."""
    status = state.value("status")
    if state.value("deleted") or status not in LIVE_STATUSES or is_reversed(state):
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
    duration = timedelta(days=plan.default_duration_days if plan else 30)
    if status == "trialing" and (state.value("trial_end") or period_end):
        # A trial ends at trial_end, with no grace days: nothing has been paid.
        expires_at = _when(state.value("trial_end") or period_end)
    elif status == "past_due" or failed_at:
        # Payment failed: access continues through the grace days, then lapses by itself.
        # A live status (checked above) is a stored field, so it has a version.
        started = failed_at or state.version("status")[0]  # type: ignore[index]
        expires_at = _when(started) + grace
    elif period_end:
        expires_at = _when(period_end)
        if not state.value("cancel_at_period_end"):
            expires_at += grace
    else:
        # A live status (checked above) is a stored field, so it has a version.
        expires_at = _when(state.version("status")[0]) + duration  # type: ignore[index]
    return {feature.lookup_key: Wanted(feature, expires_at, plan) for feature in features}


class _Said(TypedDict):
    """What every change of one sync says in the trail."""

    actor: Actor
    reason: str
    source_event_id: str | None


@dataclass
class SyncWork:
    """What it takes to bring a subscription's live Stripe rows in line with its state."""

    # (row, reason: the block's when support blocked the feature, else None)
    revoke: list[tuple[Entitlement, str | None]]
    change: list[tuple[Entitlement, Wanted]]
    create: list[Wanted]


def _reconciliation(state: SubscriptionState, *, user_id: int, lock: bool) -> SyncWork:
    # Lock the live rows first, then read the blocks. A staff revoke locks the same rows before
    # it writes its block, so a block committed while this waited is read here (each statement
    # of a READ COMMITTED transaction sees what committed before it): blocks read first would
    # miss it, and the revoked grant would be granted again beside the revoked row. In a batch
    # of events the rows were locked at the batch's first read, and the batch's own grants are
    # read (grant_batch.py).
    rows = grant_batch.live_stripe_grants(state.stripe_subscription_id, lock=lock)
    wanted = desired_for_state(state)
    blocks = selectors.open_blocks(user_id=user_id, now=timezone.now())
    blocked = {block.feature.lookup_key: block for block in blocks}
    for key in blocked:
        wanted.pop(key, None)
    work = SyncWork(revoke=[], change=[], create=[])
    for row in rows:
        target = wanted.pop(row.feature.lookup_key, None)
        if target is None:
            block = blocked.get(row.feature.lookup_key)
            work.revoke.append((row, block_reason(block) if block else None))
        elif row.expires_at != target.expires_at or row.plan_id != getattr(target.plan, "pk", None):
            work.change.append((row, target))
    work.create = list(wanted.values())
    return work


def subscription_sync(
    *,
    state: SubscriptionState,
    actor: Actor,
    reason: str,
    source_event_id: str | None,
    user: User | None = None,
) -> dict[str, int]:
    """Bring the live Stripe rows of a subscription in line with its stored state.

    `user`: the user linked to the state's customer when the caller has just resolved it (one
    read fewer); otherwise the link is read here."""
    if user is None:
        links = CustomerLink.objects.filter(stripe_customer_id=state.stripe_customer_id)
        link = links.select_related("user").first()
        if link is None:
            return {"granted": 0, "extended": 0, "revoked": 0}
        user = link.user
    work = _reconciliation(state, user_id=user.pk, lock=True)
    said: _Said = {"actor": actor, "reason": reason, "source_event_id": source_event_id}
    for row, blocked_because in work.revoke:
        revoke_said: _Said = {**said, "reason": blocked_because or reason}
        services.entitlement_revoke(entitlement=row, **revoke_said)
    for row, target in work.change:
        services.entitlement_extend(
            entitlement=row, expires_at=target.expires_at, plan=target.plan, **said
        )
    now = timezone.now()
    created = [
        services.entitlement_new(
            user=user,
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


def block_reason(block: FeatureBlock) -> str:
    """The reason every change a block causes carries in the trail."""
    return f"blocked by support (block #{block.pk}): {block.reason}"[:500]


def subscription_drift(*, state: SubscriptionState) -> list[str]:
    """How the live Stripe rows of a subscription differ from its stored state ([] = none)."""
    link = CustomerLink.objects.filter(stripe_customer_id=state.stripe_customer_id).first()
    if link is None:
        return []
    work = _reconciliation(state, user_id=link.user_id, lock=False)
    drift = [f"{row.feature.lookup_key}: live but not wanted" for row, _ in work.revoke]
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
