"""Celery tasks of entitlements: they only call services."""

from celery import shared_task

from config.context import Actor
from entitlements import blocks, services, stripe_sync, subscriptions


@shared_task(name="entitlements.record_lapses")
def record_lapses() -> int:
    """Beat: record lapsed grants for the audit trail. Access ends at expires_at regardless."""
    return services.entitlement_lapses_record()


@shared_task(name="entitlements.expire_blocks")
def expire_blocks() -> int:
    """Beat: lift support's blocks whose end date has passed (Stripe's grants return)."""
    return blocks.blocks_expire()


@shared_task(name="entitlements.retry_parked_disputes")
def retry_parked_disputes() -> int:
    """Beat: apply disputes whose charge's customer has become known since they were parked."""
    return stripe_sync.parked_disputes_retry()


@shared_task(name="entitlements.resync_plan")
def resync_plan(plan_code: str, actor_kind: str, actor_user_id: int | None) -> int:
    """After a plan edit, on behalf of the staff member who made it."""
    actor = Actor(kind=actor_kind, user_id=actor_user_id)
    return subscriptions.plan_subscribers_resync(plan_code=plan_code, actor=actor)
