"""Billing's data: the webhook secrets of each endpoint, the durable event inbox, and the
Idempotency-Key records of our own write APIs. Constraints live here; behaviour in services."""

from django.conf import settings
from django.db import models


class WebhookSecret(models.Model):
    """One active signing secret of a dj-stripe WebhookEndpoint.

    dj-stripe's WebhookEndpoint.secret holds a single secret; during a rotation Stripe signs with
    the old and the new secret at once, so the active set lives here.
    """

    endpoint = models.ForeignKey(
        "djstripe.WebhookEndpoint", on_delete=models.CASCADE, related_name="tollgate_secrets"
    )
    secret = models.CharField(max_length=256)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "secret"], name="billing_secret_unique"),
        ]

    def __str__(self) -> str:
        # Never the secret itself: this string reaches logs and the admin.
        return f"secret #{self.pk} of endpoint {self.endpoint_id}"


class StripeEvent(models.Model):
    """The inbox: one row per Stripe event id, ever. The unique event_id is the exactly-once
    guarantee; Redis only answers duplicates faster."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        APPLIED = "applied"
        FAILED = "failed"  # failed at least once, retrying
        DEAD = "dead"  # retries exhausted: a dead letter waiting for staff
        # Stored, acknowledged and audited, never applied: a test-mode event reaching a
        # live-mode deployment, or the reverse (STRIPE_LIVE_MODE).
        OTHER_MODE = "other_mode"

    class MirrorStatus(models.TextChoices):
        PENDING = "pending"
        SYNCED = "synced"
        FAILED = "failed"  # retries exhausted; `billing_mirror_sync` catches up later
        DISABLED = "disabled"

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=255)
    created = models.BigIntegerField(help_text="Stripe's `created`, unix seconds.")
    livemode = models.BooleanField(default=False)
    # A connected account's event (Stripe's top-level `account`); "" for the platform's own.
    account = models.CharField(max_length=255, blank=True, default="")
    # What events are serialized on: the customer, scoped by the connected account if any.
    customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    payload = models.JSONField(help_text="The verified event exactly as Stripe sent it.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    mirror_status = models.CharField(
        max_length=16, choices=MirrorStatus.choices, default=MirrorStatus.PENDING
    )
    mirror_attempts = models.PositiveIntegerField(default=0)
    mirror_error = models.TextField(blank=True)
    # The delivery that brought the event first; the mirror sync links it to dj-stripe's Event.
    trigger_id = models.BigIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    # The outbox mark: NULL until the relay (billing/relay.py) has published the event's tasks.
    # The webhook request only inserts; it never talks to the broker.
    queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["status"], name="billing_event_status_idx"),
            # What the relay claims: small (only rows not yet published), read in arrival order.
            models.Index(
                fields=["id"],
                condition=models.Q(queued_at__isnull=True),
                name="billing_event_unqueued_idx",
            ),
        ]
        permissions = [("reprocess_deadletter", "Can reprocess dead-lettered Stripe events")]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.type}, {self.status})"


class ChargeCustomer(models.Model):
    """Stripe charge id -> customer id, learnt from the payloads of applied events.

    A dispute names only its charge; this resolves its customer (to serialize it on that
    customer, and for entitlements to reverse) without a Stripe API call and without waiting for
    dj-stripe's Charge mirror (which lags or is off). Moved from entitlements, table and rows
    included (billing/migrations/0005_charge_customer.py)."""

    stripe_charge_id = models.CharField(max_length=255, unique=True)
    stripe_customer_id = models.CharField(max_length=255)
    learnt_from = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stripe_charge_id} -> {self.stripe_customer_id}"


class IdempotencyRecord(models.Model):
    """One Idempotency-Key use, scoped per user and operation (see billing/idempotency.py)."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    operation = models.CharField(max_length=64)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of method, path and body.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_content_type = models.CharField(max_length=128, blank=True)
    response_body = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key", "operation"], name="billing_idempotency_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operation} key of user {self.user_id} ({self.status})"


class RejectionBucket(models.Model):
    """Refused webhook deliveries of one client address, problem and minute, until the minute
    has closed and its count is in the audit trail (billing/rejections.py).

    At most one row per bucket, written by the bucket's first rejection; the count itself lives
    in Redis (`counted_in_cache`) and, only while Redis is unavailable, in `extra_count`.
    """

    minute = models.DateTimeField()
    remote_ip = models.GenericIPAddressField(help_text="The address (an IPv6 /64 network).")
    problem = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    counted_in_cache = models.BooleanField(default=False)
    extra_count = models.PositiveIntegerField(default=0)
    incomplete = models.BooleanField(
        default=False, help_text="Redis lost some of this bucket's count (flushed, restarted)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "remote_ip", "problem"], name="billing_rejection_bucket_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.problem} from {self.remote_ip} at {self.minute:%Y-%m-%d %H:%M}"
