"""Plans, features and per-user entitlements; the Stripe state they are derived from.

Data and constraints only: writes go through entitlements.services.
"""

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


class Feature(models.Model):
    lookup_key = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["lookup_key"]

    def __str__(self) -> str:
        return self.lookup_key


class Plan(models.Model):
    code = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    default_duration_days = models.PositiveIntegerField(default=30)
    grace_days = models.PositiveIntegerField(default=3)
    # Quoted: PlanFeature is defined below (the plugin cannot infer a string `through`).
    features: "models.ManyToManyField[Feature, PlanFeature]" = models.ManyToManyField(
        Feature, through="PlanFeature", related_name="plans"
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class PlanFeature(models.Model):
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="plan_features")
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="plan_features")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plan", "feature"], name="planfeature_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code}:{self.feature.lookup_key}"


class Entitlement(models.Model):
    """One feature granted to one user, by Stripe (per subscription) or by staff (manual).

    Active = not revoked and (no expiry or expiry in the future). Stripe rows are extended in
    place; a revoked row is never reused, so the table is the history of grants.
    """

    class Source(models.TextChoices):
        STRIPE = "stripe", "Stripe"
        MANUAL = "manual", "Manual"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="entitlements"
    )
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="entitlements")
    source = models.CharField(max_length=10, choices=Source.choices)
    stripe_subscription_id = models.CharField(max_length=255, blank=True, default="")
    plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="entitlements"
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reason = models.CharField(max_length=500, blank=True, default="")
    source_event_id = models.CharField(max_length=255, blank=True, default="")
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoke_reason = models.CharField(max_length=500, blank=True, default="")
    # Set once by the housekeeping task so a lapse is recorded (and audited) only once.
    lapse_recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        permissions = [
            ("grant_entitlement", "Can grant entitlements by hand"),
            ("revoke_entitlement", "Can revoke entitlements"),
        ]
        indexes = [
            models.Index(fields=["user", "revoked_at"], name="entitlement_user_live"),
            models.Index(fields=["stripe_subscription_id"], name="entitlement_subscription"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(source__in=["stripe", "manual"]), name="entitlement_source_valid"
            ),
            # A Stripe grant always belongs to a subscription and always ends.
            models.CheckConstraint(
                condition=Q(source="manual")
                | (~Q(stripe_subscription_id="") & Q(expires_at__isnull=False)),
                name="entitlement_stripe_has_subscription_and_expiry",
            ),
            # A manual grant says why and who.
            models.CheckConstraint(
                condition=Q(source="stripe") | (~Q(reason="") & Q(stripe_subscription_id="")),
                name="entitlement_manual_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=models.F("starts_at")),
                name="entitlement_expires_after_start",
            ),
            # Revoked rows carry their reason; unrevoked rows carry no revocation data.
            models.CheckConstraint(
                condition=(Q(revoked_at__isnull=True) & Q(revoke_reason="") & Q(revoked_by=None))
                | (Q(revoked_at__isnull=False) & ~Q(revoke_reason="")),
                name="entitlement_revocation_consistent",
            ),
            # At most one live Stripe row per subscription and feature: extend, never duplicate.
            models.UniqueConstraint(
                fields=["stripe_subscription_id", "feature"],
                condition=Q(source="stripe", revoked_at__isnull=True),
                name="entitlement_one_live_stripe_row",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.feature_id}:{self.source}"


class CustomerLink(models.Model):
    """Stripe customer id -> user, learnt from checkout sessions and metadata.

    dj-stripe's Customer.subscriber is only filled by its mirror, which lags while Stripe's API
    is down; this table is filled from the webhook payloads themselves.
    """

    stripe_customer_id = models.CharField(max_length=255, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stripe_customer_links"
    )
    learnt_from = models.CharField(max_length=100)
    source_event_id = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stripe_customer_id} -> {self.user_id}"


class ParkedEvent(models.Model):
    """A Stripe event for a customer not yet linked to a user, applied when the link appears.

    A dispute whose charge's customer is not known yet is parked with an empty customer and its
    charge id; it joins its customer's parked events as soon as that customer is learnt."""

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=100)
    stripe_customer_id = models.CharField(max_length=255, db_index=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    created = models.BigIntegerField()
    payload = models.JSONField()
    parked_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created", "event_id"]

    def __str__(self) -> str:
        return self.event_id


class SubscriptionState(models.Model):
    """The stored state of one Stripe subscription, merged from every applied event.

    `fields` maps a field name to [value, event created, event id]; each field keeps the value
    of the newest event that carried it: by `created`, and inside one second by what the
    payloads say (entitlements/ordering.py), never by event id. `journal` keeps the ordering
    facts of the recent events so that an event arriving late into a second is placed among
    the others. The merge is commutative and idempotent, so any order or duplication of
    deliveries ends in the same state, and reconciliation recomputes entitlements from it.
    """

    stripe_subscription_id = models.CharField(max_length=255, unique=True)
    stripe_customer_id = models.CharField(max_length=255, db_index=True)
    fields = models.JSONField(default=dict)
    journal = models.JSONField(default=list)
    # The second whose events the payloads could not order: settled by fetching the
    # subscription from Stripe in the background (null when nothing waits).
    unsettled_second = models.BigIntegerField(null=True, blank=True)
    last_event_created = models.BigIntegerField(default=0)
    last_event_id = models.CharField(max_length=255, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.stripe_subscription_id

    def value(self, name: str, default: Any = None) -> Any:
        """The stored JSON value of field `name` (any JSON type), or `default`."""
        entry = self.fields.get(name)
        return default if entry is None else entry[0]

    def version(self, name: str) -> tuple[int, str] | None:
        entry = self.fields.get(name)
        return None if entry is None else (entry[1], entry[2])


class CustomerReversal(models.Model):
    """A full refund or a dispute of a customer's payment (ENTITLEMENTS_REVOKE_ON_*).

    It reverses the customer's subscriptions that existed when it happened (subscription
    `created` at or before it), until a newer paid invoice of that subscription. Decided from
    these rows when entitlements are computed, so delivery order never matters."""

    class Kind(models.TextChoices):
        REFUND = "refund"
        DISPUTE = "dispute"

    stripe_customer_id = models.CharField(max_length=255, db_index=True)
    event_id = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    created = models.BigIntegerField(help_text="The Stripe event's `created`, unix seconds.")
    recorded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} of {self.stripe_customer_id} ({self.event_id})"


class FeatureBlock(models.Model):
    """Support revoked a feature that Stripe granted: Stripe events do not grant it to this user
    again until support lifts the block or its optional end passes. Manual grants still work."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="feature_blocks"
    )
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="blocks")
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lift_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="featureblock_has_reason"),
            models.CheckConstraint(
                condition=(Q(lifted_at__isnull=True) & Q(lift_reason=""))
                | (Q(lifted_at__isnull=False) & ~Q(lift_reason="")),
                name="featureblock_lift_consistent",
            ),
            # One block in force per user and feature: a second revoke keeps the first.
            models.UniqueConstraint(
                fields=["user", "feature"],
                condition=Q(lifted_at__isnull=True),
                name="featureblock_one_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.feature_id} blocked"


class CustomerSummary(models.Model):
    """Stripe's active entitlement summary for a customer: when present, its lookup keys are
    authoritative for that customer's Stripe-granted features."""

    stripe_customer_id = models.CharField(max_length=255, unique=True)
    lookup_keys = models.JSONField(default=list)
    event_created = models.BigIntegerField()
    event_id = models.CharField(max_length=255)

    def __str__(self) -> str:
        return self.stripe_customer_id


class UnknownPrice(models.Model):
    """A Stripe price that maps to no plan: flagged for staff, never silently ignored."""

    price_id = models.CharField(max_length=255, unique=True)
    product_id = models.CharField(max_length=255, blank=True, default="")
    lookup_key = models.CharField(max_length=255, blank=True, default="")
    stripe_subscription_id = models.CharField(max_length=255, blank=True, default="")
    last_event_id = models.CharField(max_length=255, blank=True, default="")
    occurrences = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.price_id


class GrantRequest(models.Model):
    """A manual grant too large for one person (ENTITLEMENTS_BULK_APPROVAL_THRESHOLD): stored
    as asked, applied only when another staff member with the grant permission approves it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_ids = models.JSONField(help_text="ids of the users the grant is for")
    feature_key = models.CharField(max_length=100, blank=True, default="")
    plan_code = models.CharField(max_length=100, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500)
    entitlement_count = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "rejected"]),
                name="grantrequest_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(feature_key="") | ~Q(plan_code=""),
                name="grantrequest_has_feature_or_plan",
            ),
        ]

    def __str__(self) -> str:
        what = self.plan_code or self.feature_key
        return f"grant request #{self.pk}: {what} for {len(self.user_ids)} user(s)"
