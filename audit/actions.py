"""The registry of audit action types: one place that names every kind of row in the trail.

Receivers and services refer to actions by name; recording an unregistered name is a bug and
raises UnknownAuditAction instead of writing a row nobody can filter for.
"""

from dataclasses import dataclass

from billing.stripe_events import AUDIT_ACTIONS, Kind


@dataclass(frozen=True)
class ActionType:
    name: str  # namespaced: "<app>.<entity>.<verb>"
    label: str
    category: str  # dashboard bucket: payment, webhook, deadletter, grant, revoke, plan, audit


ACTIONS: dict[str, ActionType] = {}


def register(name: str, label: str, category: str) -> ActionType:
    action = ActionType(name=name, label=label, category=category)
    ACTIONS[name] = action
    return action


def names_in(category: str) -> list[str]:
    return sorted(name for name, action in ACTIONS.items() if action.category == category)


def _payment(kind: Kind, label: str) -> ActionType:
    """One of billing's kinds, under the name billing gives it (stripe_events.AUDIT_ACTIONS)."""
    return register(AUDIT_ACTIONS[kind], label, "payment")


PAYMENT_COMPLETED = _payment(Kind.CHECKOUT_COMPLETED, "Payment completed")
INVOICE_PAID = _payment(Kind.INVOICE_PAID, "Invoice paid")
PAYMENT_FAILED = _payment(Kind.INVOICE_PAYMENT_FAILED, "Payment failed")
PAYMENT_REFUNDED = _payment(Kind.PAYMENT_REFUNDED, "Payment refunded")
PAYMENT_DISPUTED = _payment(Kind.PAYMENT_DISPUTED, "Payment disputed")
SUBSCRIPTION_CREATED = _payment(Kind.SUBSCRIPTION_CREATED, "Subscription created")
SUBSCRIPTION_UPDATED = _payment(Kind.SUBSCRIPTION_UPDATED, "Subscription updated")
SUBSCRIPTION_DELETED = _payment(Kind.SUBSCRIPTION_DELETED, "Subscription ended")
SUBSCRIPTION_PAUSED = _payment(Kind.SUBSCRIPTION_PAUSED, "Subscription paused")
SUBSCRIPTION_RESUMED = _payment(Kind.SUBSCRIPTION_RESUMED, "Subscription resumed")
TRIAL_WILL_END = _payment(Kind.SUBSCRIPTION_TRIAL_WILL_END, "Trial ends soon")
EVENT_OTHER_MODE = register(
    "billing.event.other_mode", "Event of the other mode stored, not applied", "webhook"
)
WEBHOOK_REJECTED = register("billing.webhook.rejected", "Webhook rejected", "webhook")
DEADLETTER_REPROCESSED = register(
    "billing.deadletter.reprocessed", "Dead letter reprocessed", "deadletter"
)
GRANT_CREATED = register("entitlements.grant.created", "Entitlement granted", "grant")
GRANT_EXTENDED = register("entitlements.grant.extended", "Entitlement extended", "grant")
GRANT_REVOKED = register("entitlements.grant.revoked", "Entitlement revoked", "revoke")
GRANT_LAPSED = register("entitlements.grant.lapsed", "Entitlement lapsed", "revoke")
BLOCK_CREATED = register("entitlements.block.created", "Feature blocked by support", "revoke")
BLOCK_LIFTED = register("entitlements.block.lifted", "Feature block lifted", "grant")
PLAN_CHANGED = register("entitlements.plan.changed", "Plan changed", "plan")
# Separation of duties: refused self-service changes and the second approver of bulk grants.
GRANT_REFUSED = register("entitlements.grant.refused", "Self-service change refused", "approval")
GRANT_REQUESTED = register(
    "entitlements.grant_request.created", "Bulk grant awaiting approval", "approval"
)
GRANT_REQUEST_APPROVED = register(
    "entitlements.grant_request.approved", "Bulk grant approved", "approval"
)
GRANT_REQUEST_REJECTED = register(
    "entitlements.grant_request.rejected", "Bulk grant rejected", "approval"
)
TRAIL_VIEWED = register("audit.trail.viewed", "Audit trail viewed", "audit")
EXPORT_CREATED = register("audit.export.created", "Audit trail exported", "audit")
ARCHIVE_CREATED = register("audit.archive.created", "Audit month archived", "audit")
CHECKPOINT_CREATED = register("audit.checkpoint.created", "Checkpoint signed", "audit")
CHAIN_VERIFIED = register("audit.chain.verified", "Chain verified", "audit")

# Staff access (staff, django.contrib.auth, django-axes): who got in, who was kept out.
LOGIN_SUCCEEDED = register("auth.login.succeeded", "Sign-in succeeded", "access")
LOGIN_FAILED = register("auth.login.failed", "Sign-in failed", "access")
LOGIN_LOCKED_OUT = register("auth.login.locked_out", "Sign-in locked out", "access")
SECOND_FACTOR_ENROLLED = register("auth.second_factor.enrolled", "Second factor enrolled", "access")
SECOND_FACTOR_RESET = register("auth.second_factor.reset", "Second factor reset", "access")
ROLE_CHANGED = register("auth.role.changed", "Role changed", "access")
GROUP_PERMISSIONS_CHANGED = register(
    "auth.group_permissions.changed", "Group permissions changed", "access"
)
USER_PERMISSIONS_CHANGED = register(
    "auth.user_permissions.changed", "User permissions changed", "access"
)
API_TOKEN_CREATED = register("auth.api_token.created", "Staff API token created", "access")
API_TOKEN_REVOKED = register("auth.api_token.revoked", "Staff API token revoked", "access")
API_TOKEN_REFUSED = register("auth.api_token.refused", "Staff API token refused", "access")

# The daily review (audit/review.py, audit/signoff.py): its findings worked and the day signed.
REVIEW_CREATED = register("audit.review.created", "Daily review written", "audit")
REVIEW_FINDING_ACCEPTED = register(
    "audit.review.finding_accepted", "Review finding accepted", "audit"
)
REVIEW_FINDING_ESCALATED = register(
    "audit.review.finding_escalated", "Review finding escalated", "audit"
)
REVIEW_SIGNED_OFF = register("audit.review.signed_off", "Daily review signed off", "audit")

# The staff access review (audit/access_review.py): each account kept or removed, with a reason.
ACCESS_REVIEW_STARTED = register("audit.access_review.started", "Access review started", "audit")
ACCESS_REVIEW_KEPT = register("audit.access_review.kept", "Access review: account kept", "audit")
ACCESS_REVIEW_REMOVED = register(
    "audit.access_review.removed", "Access review: account removed", "audit"
)
ACCESS_REVIEW_COMPLETED = register(
    "audit.access_review.completed", "Access review completed", "audit"
)
