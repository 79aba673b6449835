"""Lifting support's blocks (sticky revokes): by hand, or when their end passes.

A block is created by a staff revoke of a Stripe grant (services.feature_block); while it is in
force, subscription_sync grants the feature to nobody for that user. Lifting it brings the
user's subscriptions back in line at once, so Stripe's grants return without waiting for
Stripe's next event.
"""

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from config.context import Actor
from entitlements import signals
from entitlements.errors import NothingToRevoke, ReasonRequired
from entitlements.models import CustomerLink, FeatureBlock, SubscriptionState
from entitlements.services import staff_self_service_refuse
from entitlements.subscriptions import subscription_sync


def _lift(
    *, block: FeatureBlock, lifted_by: User | None, actor: Actor, reason: str, at: datetime
) -> None:
    block.lifted_at = at
    block.lifted_by = lifted_by
    block.lift_reason = reason[:500]
    block.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
    signals.feature_unblocked.send(sender=FeatureBlock, block=block, actor=actor)
    user_subscriptions_resync(user_id=block.user_id, actor=actor, reason=reason)


def user_subscriptions_resync(*, user_id: int, actor: Actor, reason: str) -> int:
    """Bring every subscription of the user's Stripe customers in line with its state."""
    customers = CustomerLink.objects.filter(user_id=user_id).values_list("stripe_customer_id")
    states = SubscriptionState.objects.select_for_update().filter(stripe_customer_id__in=customers)
    synced = 0
    for state in states.order_by("pk"):
        subscription_sync(state=state, actor=actor, reason=reason, source_event_id=None)
        synced += 1
    return synced


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("Say why: the reason is kept in the audit trail.")
    return reason


def feature_unblock(
    *, user: User, feature_key: str, lifted_by: User | None, actor: Actor, reason: str
) -> int:
    """Support lifts the user's block of a feature; Stripe's grants come back. Returns 1.

    Nobody lifts a block on their own account (the same separation of duties as a grant)."""
    reason = _require_reason(reason)
    staff_self_service_refuse(staff=lifted_by, user_ids=[user.pk], change="unblock", actor=actor)
    with transaction.atomic():
        block = (
            FeatureBlock.objects.select_for_update()
            .filter(user=user, feature__lookup_key=feature_key, lifted_at__isnull=True)
            .first()
        )
        if block is None:
            raise NothingToRevoke(f"No block of {feature_key!r} is in force for this user.")
        _lift(block=block, lifted_by=lifted_by, actor=actor, reason=reason, at=timezone.now())
    return 1


def blocks_lift_selected(
    *, block_ids: list[int], lifted_by: User, actor: Actor, reason: str
) -> int:
    """The admin's bulk lift: blocks in force among the ids are lifted (none of the lifter's
    own)."""
    reason = _require_reason(reason)
    blocks = FeatureBlock.objects.filter(pk__in=block_ids, lifted_at=None)
    owners = list(blocks.values_list("user_id", flat=True).distinct())
    staff_self_service_refuse(staff=lifted_by, user_ids=owners, change="unblock", actor=actor)
    lifted = 0
    with transaction.atomic():
        for block in blocks.select_for_update().order_by("pk"):
            _lift(block=block, lifted_by=lifted_by, actor=actor, reason=reason, at=timezone.now())
            lifted += 1
    return lifted


def blocks_expire(*, now: datetime | None = None) -> int:
    """Beat: blocks whose end has passed are lifted (actor system), once each."""
    now = now or timezone.now()
    expired = 0
    due = FeatureBlock.objects.filter(lifted_at__isnull=True, ends_at__lte=now)
    for block_id in due.values_list("pk", flat=True).order_by("pk")[:1000]:
        with transaction.atomic():
            block = FeatureBlock.objects.select_for_update().filter(pk=block_id).first()
            if block is None or block.lifted_at is not None:
                continue
            _lift(
                block=block,
                lifted_by=None,
                actor=Actor(kind="system"),
                reason="the block's end date passed",
                at=block.ends_at or now,  # set: the block was selected by ends_at <= now
            )
            expired += 1
    return expired
