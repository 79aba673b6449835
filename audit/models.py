"""The audit trail: append-only rows chained by SHA-256, and signed checkpoints of its head.

Rows hold ids and snapshots only (no foreign keys): deleting a user or an entitlement never
touches the trail. A row is inserted unsealed (sequence, prev_hash and hash empty); the sealer
(audit/sealing.py) fills those three once. PostgreSQL triggers (migrations 0002, 0004) refuse
DELETE, TRUNCATE and every UPDATE except that one filling; save() and delete() refuse too, so
the ORM fails before the database has to.
"""

from typing import Any, NoReturn

from django.db import models
from django.db.models.functions import Now

from audit.errors import AuditRecordImmutable


class ActorType(models.TextChoices):
    USER = "user", "User"
    SYSTEM = "system", "System"
    STRIPE = "stripe", "Stripe"


class ActorRole(models.TextChoices):
    OWNER = "OWNER", "Owner"
    ADMIN = "ADMIN", "Billing admin"
    SUPPORT = "SUPPORT", "Support"
    FINANCE = "FINANCE", "Finance"
    # Active staff in no group of staff/roles.py (staff.roles.UNKNOWN_STAFF_AUDIT_ROLE).
    STAFF = "STAFF", "Staff (no known role)"
    USER = "USER", "User"
    SYSTEM = "SYSTEM", "System"


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"


class AppendOnlyModel(models.Model):
    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditRecordImmutable(f"{type(self).__name__} rows cannot be changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditRecordImmutable(f"{type(self).__name__} rows cannot be deleted.")


class AuditEvent(AppendOnlyModel):
    # Insertion order; rows of one transaction are sealed in this order.
    id = models.BigAutoField(primary_key=True)
    # The gapless chain position, given by the sealer (NULL until then).
    sequence = models.PositiveBigIntegerField(null=True, blank=True, unique=True)
    # The writing transaction's id (pg_current_xact_id()), set by a PostgreSQL trigger whatever
    # the INSERT says: the sealer seals a row only once every transaction below it has ended.
    xid = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    # The database's clock: when the writing transaction began (shared by its rows).
    occurred_at = models.DateTimeField(db_index=True, db_default=Now())
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True, db_index=True)
    actor_name = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=16, choices=ActorRole.choices)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=255, blank=True, db_index=True)
    target_repr = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    stripe_event_id = models.CharField(max_length=255, blank=True, db_index=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    # Text, not inet: the hash must see exactly the string that was hashed at insert time.
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    reason = models.CharField(max_length=1000, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    # Seal fields: NULL ("not sealed yet") rather than "", so that UNIQUE allows many of them.
    prev_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    hash = models.CharField(max_length=64, unique=True, null=True, blank=True)

    class Meta:
        ordering = [models.F("sequence").desc(nulls_first=True)]
        # Composite (column, sequence) indexes serve "filter, newest first" without a sort.
        # On PostgreSQL the db_index columns above keep their plain index only: migration 0009
        # drops the varchar_pattern_ops twins Django adds (no prefix search exists, and sealing
        # adds an entry to every index of the table).
        indexes = [
            models.Index(fields=["action", "sequence"], name="audit_action_seq"),
            models.Index(fields=["actor_type", "sequence"], name="audit_actor_type_seq"),
            models.Index(fields=["actor_role", "sequence"], name="audit_actor_role_seq"),
            models.Index(fields=["outcome", "sequence"], name="audit_outcome_seq"),
            # The sealer's work list: small, whatever the size of the trail.
            models.Index(
                fields=["xid", "id"],
                name="audit_unsealed",
                condition=models.Q(sequence__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        position = f"#{self.sequence}" if self.sequence is not None else "(unsealed)"
        return f"{position} {self.action}"


class ChainHead(models.Model):
    """The newest sealed row, written by the sealer alone (writers never touch it).

    audit_verify compares it with the last row to catch a cut tail. Not protected by
    triggers: the sealer reads the real head from the trail, and a forged head only produces
    a tail-cut report.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"head #{self.sequence}"


class AuditCheckpoint(AppendOnlyModel):
    """A signed statement "the chain had this head, and its Merkle tree this root, at this time",
    also written outside the database (AUDIT_CHECKPOINT_DIR).

    `sequence` is the tree size (rows 1..sequence), `hash` that row's chain hash, `root` the
    RFC 9162 tree root of rows 1..sequence. Ed25519 checkpoints are verified with the public key
    alone; HMAC-SHA256 ones (from before) need AUDIT_CHECKPOINT_KEY and have no root.
    """

    class Algorithm(models.TextChoices):
        ED25519 = "Ed25519", "Ed25519"
        HMAC_SHA256 = "HMAC-SHA256", "HMAC-SHA256 (legacy)"

    sequence = models.PositiveBigIntegerField(db_index=True)
    hash = models.CharField(max_length=64)
    root = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    algorithm = models.CharField(max_length=16, choices=Algorithm.choices, default="Ed25519")
    signature = models.CharField(max_length=128)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint #{self.sequence}"


class AuditTreeNode(AppendOnlyModel):
    """A complete subtree of the Merkle tree: leaves [index * 2^level, (index + 1) * 2^level),
    level >= 1. Written by the sealer, read by proofs; append-only like the rows."""

    level = models.PositiveSmallIntegerField()
    index = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["level", "index"], name="audit_tree_node_position")
        ]

    def __str__(self) -> str:
        return f"tree node {self.level}/{self.index}"


# --- Daily review (audit/review.py writes these; the admin only reads them) -------------------


class DailyReview(models.Model):
    """One UTC day of the trail, reviewed by the beat task and signed off by a Finance reviewer.

    Changed only by audit/review.py's services (the admin is read-only; working a finding and
    signing off are POST views that call them). Users are snapshots (id and username), never
    foreign keys, like the trail itself.
    """

    day = models.DateField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    chain_ok = models.BooleanField()
    rows = models.PositiveBigIntegerField(default=0)
    first_sequence = models.PositiveBigIntegerField(null=True, blank=True)
    last_sequence = models.PositiveBigIntegerField(null=True, blank=True)
    signed_off_at = models.DateTimeField(null=True, blank=True, db_index=True)
    signed_off_by_id = models.CharField(max_length=64, blank=True)
    signed_off_by_name = models.CharField(max_length=150, blank=True)
    # The audit row that records the sign-off (its id: the sealer numbers it later), and the
    # signed checkpoint covering the day.
    sign_off_row_id = models.PositiveBigIntegerField(null=True, blank=True)
    checkpoint_id = models.PositiveBigIntegerField(null=True, blank=True)
    checkpoint_sequence = models.PositiveBigIntegerField(null=True, blank=True)
    checkpoint_hash = models.CharField(max_length=64, blank=True)
    # The thresholds the review ran with (AUDIT_REVIEW_* settings at the time): its evidence
    # export states them, and a later change of settings does not rewrite that export.
    parameters = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-day"]
        permissions = [("sign_off_dailyreview", "Can work findings and sign off a daily review")]

    def __str__(self) -> str:
        return f"review of {self.day.isoformat()}"


class FindingKind(models.TextChoices):
    CHAIN_BROKEN = "chain_broken", "Chain does not verify"
    CHECKPOINT_STALE = "checkpoint_stale", "Checkpoint missing or stale"
    WEBHOOK_REJECTED_SPIKE = "webhook_rejected_spike", "Rejected-webhook spike"
    INVALID_SIGNATURE_SPIKE = "invalid_signature_spike", "Invalid-signature spike"
    DEAD_LETTERS = "dead_letters", "Dead letters"
    GRANT_OUTSIDE_HOURS = "grant_outside_hours", "Manual grant or revoke outside business hours"
    GRANT_BULK = "grant_bulk", "Manual grants or revokes by one person over the threshold"
    GRANT_OWN_ACCOUNT = "grant_own_account", "Grant or revoke on the actor's own account"
    SIGN_IN_FAILURES = "sign_in_failures", "Failed sign-ins over the threshold"
    LOCKOUTS = "lockouts", "Locked-out sign-ins"
    ROLE_CHANGES = "role_changes", "Role changes"
    SECOND_FACTOR_RESETS = "second_factor_resets", "Second-factor resets"


class FindingStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    ESCALATED = "escalated", "Escalated"


class ReviewFinding(models.Model):
    review = models.ForeignKey(DailyReview, on_delete=models.PROTECT, related_name="findings")
    kind = models.CharField(max_length=32, choices=FindingKind.choices)
    summary = models.CharField(max_length=500)
    # The audit rows behind the finding (sequence numbers, at most AUDIT_REVIEW_MAX_LINKED)
    # and the user ids who acted in them (the self-sign-off check reads these).
    sequences = models.JSONField(default=list, blank=True)
    actor_ids = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=FindingStatus.choices, default=FindingStatus.OPEN
    )
    note = models.CharField(max_length=1000, blank=True)
    worked_at = models.DateTimeField(null=True, blank=True)
    worked_by_id = models.CharField(max_length=64, blank=True)
    worked_by_name = models.CharField(max_length=150, blank=True)
    # The audit row that records how it was worked (its id: the sealer numbers it later).
    worked_row_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["review", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.review.day.isoformat()})"


class DailyCount(models.Model):
    """Rows per UTC day, action and outcome (a refused-webhook row counts as its deliveries):
    the dashboard's charts read this small table (a few dozen rows a day) instead of grouping
    millions of trail rows on every view."""

    day = models.DateField()
    action = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    rows = models.PositiveBigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "action", "outcome"], name="audit_daily_count")
        ]

    def __str__(self) -> str:
        return f"{self.day.isoformat()} {self.action} {self.outcome}: {self.rows}"


# --- Staff access review (audit/access_review.py writes these; the admin only reads them) -----


class AccessReview(models.Model):
    """A periodic review of every staff account (PCI DSS 7.2.4): one decision per account,
    then completion, bound to the newest checkpoint. Users are snapshots, never foreign keys."""

    started_at = models.DateTimeField()
    started_by_id = models.CharField(max_length=64, blank=True)
    started_by_name = models.CharField(max_length=150, blank=True)
    # The setting it was due under, kept for the evidence export.
    interval_days = models.PositiveIntegerField()
    completed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    completed_by_id = models.CharField(max_length=64, blank=True)
    completed_by_name = models.CharField(max_length=150, blank=True)
    completion_row_id = models.PositiveBigIntegerField(null=True, blank=True)
    checkpoint_id = models.PositiveBigIntegerField(null=True, blank=True)
    checkpoint_sequence = models.PositiveBigIntegerField(null=True, blank=True)
    checkpoint_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-started_at"]
        permissions = [
            ("conduct_accessreview", "Can decide on accounts and complete an access review")
        ]
        constraints = [
            # At most one review open at a time: two would ask the same questions twice.
            models.UniqueConstraint(
                models.Value(True),
                condition=models.Q(completed_at__isnull=True),
                name="audit_one_open_access_review",
            )
        ]

    def __str__(self) -> str:
        return f"access review of {self.started_at.date().isoformat()}"


class AccessDecision(models.TextChoices):
    PENDING = "pending", "Pending"
    KEEP = "keep", "Keep"
    REMOVE = "remove", "Remove"


class AccessReviewDecision(models.Model):
    """One staff account as it stood when the review started, and what the reviewer decided."""

    review = models.ForeignKey(AccessReview, on_delete=models.PROTECT, related_name="decisions")
    user_id = models.CharField(max_length=64)
    username = models.CharField(max_length=150)
    role = models.CharField(max_length=16, choices=ActorRole.choices)
    groups = models.JSONField(default=list, blank=True)
    last_login = models.DateTimeField(null=True, blank=True)
    second_factor = models.CharField(max_length=64)
    # "app_label.codename" of every permission the account holds (by its groups or directly).
    permissions = models.JSONField(default=list, blank=True)
    decision = models.CharField(
        max_length=16, choices=AccessDecision.choices, default=AccessDecision.PENDING
    )
    reason = models.CharField(max_length=1000, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by_id = models.CharField(max_length=64, blank=True)
    decided_by_name = models.CharField(max_length=150, blank=True)
    decision_row_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["review", "username"]
        constraints = [
            models.UniqueConstraint(fields=["review", "user_id"], name="audit_access_review_user")
        ]

    def __str__(self) -> str:
        return f"{self.username} ({self.review})"
