"""billing's problems: each answered as RFC 9457 problem+json (docs/errors.md lists them)."""

from config.problems import ProblemError


class WebhookError(ProblemError):
    """A refused webhook delivery."""

    status = 400


class WebhookSignatureMissing(WebhookError):
    slug = "webhook-signature-missing"
    title = "Stripe-Signature header missing"


class WebhookSignatureInvalid(WebhookError):
    slug = "webhook-signature-invalid"
    title = "Webhook signature invalid"


class WebhookTimestampOutOfTolerance(WebhookError):
    slug = "webhook-timestamp-out-of-tolerance"
    title = "Webhook timestamp outside the tolerance"


class WebhookMalformedEvent(WebhookError):
    slug = "webhook-malformed-event"
    title = "Not a Stripe event"


class WebhookPayloadTooLarge(WebhookError):
    slug = "payload-too-large"
    title = "Payload too large"
    status = 413


class WebhookEndpointUnknown(WebhookError):
    slug = "webhook-endpoint-unknown"
    title = "Unknown webhook endpoint"
    status = 404


class WebhookMethodNotAllowed(WebhookError):
    slug = "method-not-allowed"
    title = "Method not allowed"
    status = 405


class WebhookThrottled(WebhookError):
    slug = "throttled"
    title = "Too many requests"
    status = 429


class IdempotencyKeyInvalid(ProblemError):
    slug = "idempotency-key-invalid"
    title = "Idempotency-Key header invalid"
    status = 400


class IdempotencyKeyReused(ProblemError):
    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with a different request"
    status = 422


class IdempotencyKeyInProgress(ProblemError):
    slug = "idempotency-key-in-progress"
    title = "A request with this Idempotency-Key is still being processed"
    status = 409


class DeadLetterNotReprocessable(ProblemError):
    slug = "dead-letter-not-reprocessable"
    title = "Only dead-lettered events can be reprocessed"
    status = 409
