"""entitlements' errors, each answered as RFC 9457 problem+json (see docs/errors.md)."""

from config.problems import ProblemError, problem_type

# Not an exception: the answer of feature_required (entitlements/access.py) to a user without
# the feature.
FEATURE_REQUIRED = problem_type("feature-required", "Feature required", 403)


class EntitlementError(ProblemError):
    slug = "entitlement-error"
    title = "Entitlement request refused"
    status = 422


class ReasonRequired(EntitlementError):
    slug = "reason-required"
    title = "A reason is required"
    status = 422


class UnknownFeature(EntitlementError):
    slug = "unknown-feature"
    title = "No such feature or plan"
    status = 422


class UnknownUser(EntitlementError):
    slug = "unknown-user"
    title = "No such user"
    status = 422


class InvalidExpiry(EntitlementError):
    slug = "invalid-expiry"
    title = "The expiry must be in the future"
    status = 422


class NothingToRevoke(EntitlementError):
    slug = "nothing-to-revoke"
    title = "No active entitlement matches"
    status = 409


class SelfGrantRefused(EntitlementError):
    slug = "self-grant-refused"
    title = "Staff cannot grant or revoke on their own account"
    status = 403


class ApprovalRequired(EntitlementError):
    """Not a failure: the grant was stored as a request that another staff member approves."""

    slug = "approval-required"
    title = "This bulk grant waits for a second approver"
    status = 202


class SecondApproverRequired(EntitlementError):
    slug = "second-approver-required"
    title = "A grant request is approved by someone other than its requester"
    status = 403


class GrantRequestNotPending(EntitlementError):
    slug = "grant-request-not-pending"
    title = "The grant request was already decided"
    status = 409
