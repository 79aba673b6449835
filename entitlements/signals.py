"""entitlements' own signals; audit/ records them (entitlements never imports audit).

Every signal is sent inside the transaction of the change it describes.
Common kwargs: entitlement (Entitlement), actor (config.context.Actor), reason (str),
source_event_id (str | None: the Stripe event that caused it).
"""

from django.dispatch import Signal

entitlement_granted = Signal()
entitlement_extended = Signal()  # also: previous_expires_at (datetime | None)
entitlement_revoked = Signal()
entitlement_lapsed = Signal()

# A plan or its features were changed by staff. kwargs: plan (Plan), actor, changes (dict)
plan_changed = Signal()

# Support blocked a Stripe-granted feature for a user (a sticky revoke), or lifted the block.
# kwargs: block (FeatureBlock), actor
feature_blocked = Signal()
feature_unblocked = Signal()
# Separation of duties (sent outside any transaction that rolls back, so they are kept):
# a refused self-service change. kwargs: actor, user_id, change ("grant" or "revoke"), problem
change_refused = Signal()
# A bulk grant stored for a second approver / approved / rejected. kwargs: grant_request, actor
grant_requested = Signal()
grant_request_approved = Signal()
grant_request_rejected = Signal()
