"""audit's exceptions, each answered as problem+json by config.problems."""

from config.problems import ProblemError


class AuditError(ProblemError):
    slug = "audit-error"
    title = "Audit trail error"
    status = 500


class AuditRecordImmutable(AuditError):
    slug = "audit-immutable"
    title = "Audit records cannot be changed or deleted"
    status = 409


class UnknownAuditAction(AuditError):
    slug = "audit-unknown-action"
    title = "Unregistered audit action"
    status = 500


class AuditExportInvalid(AuditError):
    slug = "audit-export-invalid"
    title = "Invalid audit export request"
    status = 400


class ReviewRefused(AuditError):
    slug = "audit-review-refused"
    title = "The daily review cannot be worked or signed off like this"
    status = 409


class ReviewSelfSignOff(ReviewRefused):
    slug = "audit-review-self-sign-off"
    title = "Nobody may sign off a day whose findings include their own actions"
    status = 403


class AccessReviewRefused(AuditError):
    slug = "audit-access-review-refused"
    title = "The access review cannot be worked or completed like this"
    status = 409


class AccessReviewSelfDecision(AccessReviewRefused):
    slug = "audit-access-review-self-decision"
    title = "Nobody may decide on their own account in an access review"
    status = 403
