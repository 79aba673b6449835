"""Signal receivers: each parses what billing or entitlements sent and calls one service.

billing and entitlements send inside the transaction of the change, so the row commits or
rolls back with it. webhook_rejected comes from billing's beat task, once per address, problem and
minute.
"""

from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from django.db.models import Model
from django.dispatch import receiver

from audit import actions
from audit.actions import ActionType
from audit.models import Outcome
from audit.services import Target, audit_event_record, audit_rows_batched
from billing import signals as billing_signals
from billing.stripe_events import BillingEvent
from config.context import Actor, current_actor
from entitlements import signals as entitlement_signals
from entitlements.models import Entitlement, FeatureBlock, GrantRequest, Plan

STRIPE = Actor(kind="stripe")


@receiver(billing_signals.stripe_event_batch, dispatch_uid="audit.stripe_event_batch")
def batch_rows(sender: type[Model], **kwargs: object) -> AbstractContextManager[None]:
    # billing applies a batch of events in one transaction: their rows go in one INSERT.
    return audit_rows_batched()


# stripe_event_applying, not _processed: the event's row precedes the grants it causes.
@receiver(billing_signals.stripe_event_applying, dispatch_uid="audit.stripe_event_applying")
def record_stripe_event(
    sender: type[Model], *, billing_event: BillingEvent, **kwargs: object
) -> None:
    # billing names the action of each kind it wants recorded; audit registers those names.
    if not billing_event.audit_action:
        return
    # A staff member reprocessing a dead letter is the cause; otherwise Stripe is.
    actor = current_actor() if current_actor().kind == "user" else STRIPE
    kind, object_id = billing_event.object_type, billing_event.object_id
    audit_event_record(
        action=billing_event.audit_action,
        actor=actor,
        target=Target(kind, object_id, f"{kind} {object_id}"),
        outcome=Outcome.FAILURE if billing_event.reports_failure else Outcome.SUCCESS,
        stripe_event_id=billing_event.event_id,
        meta=dict(billing_event.meta),
    )


@receiver(billing_signals.stripe_event_other_mode, dispatch_uid="audit.stripe_event_other_mode")
def record_other_mode(
    sender: type[Model],
    *,
    event_id: str,
    event_type: str,
    livemode: bool,
    account: str = "",
    **kwargs: object,
) -> None:
    mode = "live" if livemode else "test"
    audit_event_record(
        action=actions.EVENT_OTHER_MODE.name,
        actor=STRIPE,
        target=Target("stripe_event", event_id, f"{event_type} {event_id}"),
        outcome=Outcome.FAILURE,
        reason=f"a {mode}-mode event is never applied by this deployment",
        stripe_event_id=event_id,
        meta={"event_type": event_type, "livemode": livemode, "account": account or None},
    )


@receiver(billing_signals.webhook_rejected, dispatch_uid="audit.webhook_rejected")
def record_webhook_rejected(
    sender: type[Model],
    *,
    problem: str,
    status: int,
    count: int,
    remote_ip: str,
    minute: datetime,
    **kwargs: object,
) -> None:
    # One row per address, problem and minute (billing/rejections.py), never one per request.
    incomplete = bool(kwargs.get("count_incomplete"))
    at_least = "at least " if incomplete else ""
    audit_event_record(
        action=actions.WEBHOOK_REJECTED.name,
        actor=STRIPE,
        target=Target("webhook", "", "webhook delivery"),
        outcome=Outcome.FAILURE,
        reason=f"{at_least}{count} deliveries refused ({problem}) in the minute from "
        f"{minute:%Y-%m-%d %H:%M} UTC",
        ip=remote_ip,
        user_agent="",
        meta={
            "problem": problem,
            "http_status": status,
            "count": count,
            "count_incomplete": incomplete,
            "minute": minute.isoformat(),
        },
    )


@receiver(billing_signals.dead_letter_reprocessed, dispatch_uid="audit.dead_letter_reprocessed")
def record_dead_letter_reprocessed(
    sender: type[Model],
    *,
    event_id: str,
    event_type: str,
    actor: Actor,
    reason: str = "",
    **kwargs: object,
) -> None:
    audit_event_record(
        action=actions.DEADLETTER_REPROCESSED.name,
        actor=actor,
        target=Target("stripe_event", event_id, f"{event_type} {event_id}"),
        reason=reason,
        stripe_event_id=event_id,
        meta={"event_type": event_type},
    )


def _entitlement_meta(entitlement: Entitlement, **extra: datetime | None) -> dict[str, Any]:
    plan = getattr(entitlement, "plan", None)
    times = {
        "starts_at": entitlement.starts_at,
        "expires_at": entitlement.expires_at,
        **{key: value for key, value in extra.items() if key.endswith("_at")},
    }
    return {
        "entitlement_id": entitlement.pk,
        "user_id": entitlement.user_id,
        "feature": entitlement.feature.lookup_key,
        "plan": plan.code if plan is not None else None,
        "source": entitlement.source,
        "subscription": entitlement.stripe_subscription_id or None,
        **{key: value.isoformat() if value else None for key, value in times.items()},
    }


def _record_entitlement(
    action: ActionType,
    entitlement: Entitlement,
    actor: Actor,
    reason: str,
    source_event_id: str | None,
    **extra: datetime | None,
) -> None:
    audit_event_record(
        action=action.name,
        actor=actor,
        target=Target(
            "entitlement",
            entitlement.pk,
            f"{entitlement.feature.lookup_key} for user {entitlement.user_id}",
        ),
        reason=reason or "",
        stripe_event_id=source_event_id or "",
        meta=_entitlement_meta(entitlement, **extra),
    )


@receiver(entitlement_signals.entitlement_granted, dispatch_uid="audit.entitlement_granted")
def record_granted(
    sender: type[Model],
    *,
    entitlement: Entitlement,
    actor: Actor,
    reason: str = "",
    source_event_id: str | None = None,
    **kwargs: object,
) -> None:
    _record_entitlement(actions.GRANT_CREATED, entitlement, actor, reason, source_event_id)


@receiver(entitlement_signals.entitlement_extended, dispatch_uid="audit.entitlement_extended")
def record_extended(
    sender: type[Model],
    *,
    entitlement: Entitlement,
    actor: Actor,
    reason: str = "",
    source_event_id: str | None = None,
    previous_expires_at: datetime | None = None,
    **kwargs: object,
) -> None:
    _record_entitlement(
        actions.GRANT_EXTENDED,
        entitlement,
        actor,
        reason,
        source_event_id,
        previous_expires_at=previous_expires_at,
    )


@receiver(entitlement_signals.entitlement_revoked, dispatch_uid="audit.entitlement_revoked")
def record_revoked(
    sender: type[Model],
    *,
    entitlement: Entitlement,
    actor: Actor,
    reason: str = "",
    source_event_id: str | None = None,
    **kwargs: object,
) -> None:
    _record_entitlement(actions.GRANT_REVOKED, entitlement, actor, reason, source_event_id)


@receiver(entitlement_signals.entitlement_lapsed, dispatch_uid="audit.entitlement_lapsed")
def record_lapsed(
    sender: type[Model],
    *,
    entitlement: Entitlement,
    actor: Actor,
    reason: str = "",
    source_event_id: str | None = None,
    **kwargs: object,
) -> None:
    _record_entitlement(actions.GRANT_LAPSED, entitlement, actor, reason, source_event_id)


def _record_block(action: ActionType, block: FeatureBlock, actor: Actor, reason: str) -> None:
    audit_event_record(
        action=action.name,
        actor=actor,
        target=Target(
            "feature_block", block.pk, f"{block.feature.lookup_key} for user {block.user_id}"
        ),
        reason=reason,
        meta={
            "block_id": block.pk,
            "user_id": block.user_id,
            "feature": block.feature.lookup_key,
            "ends_at": block.ends_at.isoformat() if block.ends_at else None,
        },
    )


@receiver(entitlement_signals.feature_blocked, dispatch_uid="audit.feature_blocked")
def record_blocked(
    sender: type[Model], *, block: FeatureBlock, actor: Actor, **kwargs: object
) -> None:
    _record_block(actions.BLOCK_CREATED, block, actor, block.reason)


@receiver(entitlement_signals.feature_unblocked, dispatch_uid="audit.feature_unblocked")
def record_unblocked(
    sender: type[Model], *, block: FeatureBlock, actor: Actor, **kwargs: object
) -> None:
    _record_block(actions.BLOCK_LIFTED, block, actor, block.lift_reason)


@receiver(entitlement_signals.plan_changed, dispatch_uid="audit.plan_changed")
def record_plan_changed(
    sender: type[Model],
    *,
    plan: Plan,
    actor: Actor,
    changes: Mapping[str, object] | None = None,
    reason: str = "",
    **kwargs: object,
) -> None:
    audit_event_record(
        action=actions.PLAN_CHANGED.name,
        actor=actor,
        target=Target("plan", plan.pk, plan.code),
        reason=reason,
        meta={"plan": plan.code, "changed_fields": sorted(changes or {})},
    )


@receiver(entitlement_signals.change_refused, dispatch_uid="audit.entitlement_change_refused")
def record_change_refused(
    sender: type[Model], *, actor: Actor, user_id: int, change: str, problem: str, **kwargs: object
) -> None:
    audit_event_record(
        action=actions.GRANT_REFUSED.name,
        actor=actor,
        target=Target("user", str(user_id), f"{change} on own account (user {user_id})"),
        outcome=Outcome.FAILURE,
        meta={"user_id": user_id, "change": change, "problem": problem},
    )


def _record_grant_request(action: ActionType, grant_request: GrantRequest, actor: Actor) -> None:
    audit_event_record(
        action=action.name,
        actor=actor,
        target=Target("grant_request", grant_request.pk, str(grant_request)),
        reason=grant_request.reason,
        meta={
            "grant_request_id": grant_request.pk,
            "user_ids": grant_request.user_ids,
            "feature": grant_request.feature_key or None,
            "plan": grant_request.plan_code or None,
            "count": grant_request.entitlement_count,
            "status": grant_request.status,
        },
    )


@receiver(entitlement_signals.grant_requested, dispatch_uid="audit.grant_requested")
def record_grant_requested(
    sender: type[Model], *, grant_request: GrantRequest, actor: Actor, **kwargs: object
) -> None:
    _record_grant_request(actions.GRANT_REQUESTED, grant_request, actor)


@receiver(entitlement_signals.grant_request_approved, dispatch_uid="audit.grant_request_approved")
def record_grant_request_approved(
    sender: type[Model], *, grant_request: GrantRequest, actor: Actor, **kwargs: object
) -> None:
    _record_grant_request(actions.GRANT_REQUEST_APPROVED, grant_request, actor)


@receiver(entitlement_signals.grant_request_rejected, dispatch_uid="audit.grant_request_rejected")
def record_grant_request_rejected(
    sender: type[Model], *, grant_request: GrantRequest, actor: Actor, **kwargs: object
) -> None:
    _record_grant_request(actions.GRANT_REQUEST_REJECTED, grant_request, actor)
