"""Writes to the audit trail. Every row goes through audit_event_record()."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from audit import actions, chain, metrics
from audit.errors import AuditError, UnknownAuditAction
from audit.meta import clean_meta
from audit.models import ActorRole, ActorType, AuditCheckpoint, AuditEvent, ChainHead, Outcome
from audit.privacy import username_for_trail
from config import context
from config.logging import redact_text

# Group name -> role, strongest first (a user in several groups gets the first match).
GROUP_ROLES = (
    ("Billing admin", ActorRole.ADMIN),
    ("Support", ActorRole.SUPPORT),
    (settings.AUDIT_FINANCE_GROUP, ActorRole.FINANCE),
)


@dataclass(frozen=True)
class Target:
    type: str = ""
    id: str = ""
    repr: str = ""


@dataclass(frozen=True)
class ActorSnapshot:
    type: str
    id: str
    name: str
    role: str


def actor_snapshot(actor: context.Actor, *, user=None) -> ActorSnapshot:
    """Who acted, as stored: type, id, username (never the email) and role at that moment."""
    if actor.kind != ActorType.USER or (actor.user_id is None and user is None):
        kind = actor.kind if actor.kind in ActorType.values else ActorType.SYSTEM
        return ActorSnapshot(kind, "", kind, ActorRole.SYSTEM)
    if user is None:
        user = get_user_model().objects.filter(pk=actor.user_id).first()
    if user is None:
        return ActorSnapshot(ActorType.USER, str(actor.user_id), "", ActorRole.USER)
    name = username_for_trail(user.get_username())
    return ActorSnapshot(ActorType.USER, str(user.pk), name, _role_of(user))


def _role_of(user) -> str:
    if user.is_superuser:
        return ActorRole.OWNER
    groups = set(user.groups.values_list("name", flat=True))
    for group, role in GROUP_ROLES:
        if group in groups:
            return role
    return ActorRole.USER


def _text(value, limit: int) -> str:
    """Storable text: PostgreSQL refuses NUL and lone surrogates, and an audit write must not
    fail on a hostile user agent or reason. Cut to the column's length."""
    text = "" if value is None else str(value)
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:limit]


def _database_now() -> datetime:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # statement_timestamp(): the database's clock, not the app server's.
            cursor.execute("SELECT statement_timestamp()")
            return cursor.fetchone()[0]
    return datetime.now(UTC)


def _locked_head() -> ChainHead:
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    # First write ever (or the head row was lost): rebuild it from the newest row. Two
    # writers racing here both try the insert; ignore_conflicts lets the loser lock the winner.
    newest = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    sequence, head_hash = newest or (0, chain.GENESIS_HASH)
    ChainHead.objects.bulk_create(
        [ChainHead(pk=1, sequence=sequence, hash=head_hash)], ignore_conflicts=True
    )
    return ChainHead.objects.select_for_update().get(pk=1)


def _locked_head_and_clock() -> tuple[int, str, datetime]:
    """Lock the chain head; its sequence and hash, and the database's clock, in one query."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT sequence, hash, statement_timestamp() FROM {ChainHead._meta.db_table} "  # noqa: S608 - the model's own table name
                "WHERE id = 1 FOR UPDATE"
            )
            row = cursor.fetchone()
        if row is not None:
            return row
    head = _locked_head()
    return head.sequence, head.hash, _database_now()


# The head this connection's transaction last wrote (sequence, hash, clock). The next row of the
# same transaction chains from it without reading the head again: the head row stays locked
# until commit, and _head_advance only moves the head if it still is exactly this one (a
# compare-and-set under that lock), so a value left over by a rollback is caught and re-read.
_HEAD_ATTRIBUTE = "tollgate_audit_head"


def _head_of_this_transaction() -> tuple[int, str, datetime]:
    remembered = getattr(connection, _HEAD_ATTRIBUTE, None)
    return remembered if remembered is not None else _locked_head_and_clock()


def _head_remember(sequence: int, row_hash: str, clock: datetime) -> None:
    if getattr(connection, _HEAD_ATTRIBUTE, None) is None:
        transaction.on_commit(_head_forget)
    setattr(connection, _HEAD_ATTRIBUTE, (sequence, row_hash, clock))


def _head_forget() -> None:
    setattr(connection, _HEAD_ATTRIBUTE, None)


def _chained(fields: dict, head: tuple[int, str, datetime]) -> AuditEvent:
    """The row after `head`. Rows of one transaction carry the clock of its first audit write
    (taken under the chain lock, so occurred_at never decreases along the chain)."""
    sequence, head_hash, clock = head
    fields = {**fields, "sequence": sequence + 1, "occurred_at": clock}
    values = tuple(fields[name] for name in chain.CONTENT_FIELDS)
    return AuditEvent(**fields, prev_hash=head_hash, hash=chain.link_hash(head_hash, values))


def _head_advance(head: tuple[int, str, datetime], event: AuditEvent) -> bool:
    """Move the head from `head` to `event`, only if it is still `head` (one UPDATE)."""
    moved = ChainHead.objects.filter(pk=1, sequence=head[0], hash=head[1]).update(
        sequence=event.sequence, hash=event.hash
    )
    if not moved:
        _head_forget()
    return bool(moved)


def audit_event_record(
    *,
    action: str,
    actor: context.Actor | None = None,
    actor_user=None,
    target: Target = Target(),
    outcome: str = Outcome.SUCCESS,
    reason: str = "",
    stripe_event_id: str = "",
    request_id: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    meta: dict | None = None,
) -> AuditEvent:
    """Append one row to the chain, in the caller's transaction (or its own if none).

    The actor, request id and client default to the current context (config.context), so a
    Celery task records whoever caused it. The chain head is locked for the rest of the
    transaction: writers queue behind each other and never fork the chain.
    """
    if action not in actions.ACTIONS:
        raise UnknownAuditAction(f"Audit action {action!r} is not registered.")
    who = actor_snapshot(actor or context.current_actor(), user=actor_user)
    client_ip, client_agent = context.current_client()
    fields = {
        "action": action,
        "actor_id": _text(who.id, 64),
        "actor_name": _text(who.name, 150),
        "actor_role": who.role,
        "actor_type": who.type,
        "ip": _text(ip if ip is not None else client_ip, 45),
        "meta": clean_meta(meta),
        "outcome": outcome,
        # Free text (typed by staff, or sent by anyone): secret-shaped values are masked.
        "reason": _text(redact_text(reason or ""), 1000),
        "request_id": _text(
            request_id if request_id is not None else context.current_request_id(), 64
        ),
        "stripe_event_id": _text(stripe_event_id, 255),
        "target_id": _text(target.id, 255),
        "target_repr": _text(redact_text(str(target.repr or "")), 255),
        "target_type": _text(target.type, 64),
        "user_agent": _text(
            redact_text(str(user_agent if user_agent is not None else client_agent or "")), 512
        ),
    }
    # No savepoint inside the caller's transaction: if this write fails, the change it records
    # must not commit either, so the caller's whole transaction rolls back with it.
    with transaction.atomic(savepoint=False):
        head = _head_of_this_transaction()
        event = _chained(fields, head)
        if not _head_advance(head, event):
            # The remembered head is stale (a rollback since): lock and read the real one.
            head = _locked_head_and_clock()
            event = _chained(fields, head)
            if not _head_advance(head, event):
                raise AuditError("The audit chain head moved while locked.")
        event.save(force_insert=True)
        _head_remember(event.sequence, event.hash, head[2])
        # Counted when the row commits: a rolled-back change leaves no row and no count.
        transaction.on_commit(lambda: metrics.EVENTS.labels(action=action).inc())
    return event


def audit_checkpoint_create(*, at: int | None = None, key: str | None = None) -> AuditCheckpoint:
    """Sign the current head (or the row at sequence `at`, to anchor a pruned prefix) with
    AUDIT_CHECKPOINT_KEY and store it (append-only)."""
    with transaction.atomic():
        head = _locked_head()
        sequence, head_hash = head.sequence, head.hash
        if at is not None:
            head_hash = (
                AuditEvent.objects.filter(sequence=at).values_list("hash", flat=True).first()
            )
            if head_hash is None:
                raise AuditError(f"No audit row with sequence {at}.")
            sequence = at
        created_at = _database_now()
        signature = chain.checkpoint_signature(
            key or settings.AUDIT_CHECKPOINT_KEY,
            sequence=sequence,
            head_hash=head_hash,
            created_at=created_at,
        )
        checkpoint = AuditCheckpoint(
            sequence=sequence, hash=head_hash, created_at=created_at, signature=signature
        )
        checkpoint.save()
    return checkpoint


def audit_checkpoint_sign(*, at: int | None = None) -> AuditCheckpoint:
    """Create a checkpoint and record that it was made (audit_checkpoint, the beat task)."""
    checkpoint = audit_checkpoint_create(at=at)
    audit_event_record(
        action=actions.CHECKPOINT_CREATED.name,
        target=Target("audit_checkpoint", checkpoint.pk, str(checkpoint)),
        meta={"checkpoint_sequence": checkpoint.sequence},
    )
    return checkpoint


def chain_verification_run(
    *, chunk_size: int | None = None, progress=None, record: bool = True, workers: int = 1
):
    """Verify the chain, count the outcome, and (unless record=False) append the result."""
    from audit.verification import chain_verify

    result = chain_verify(chunk_size=chunk_size, progress=progress, workers=workers)
    metrics.VERIFICATIONS.labels(outcome="success" if result.ok else "failure").inc()
    if record:
        audit_event_record(
            action=actions.CHAIN_VERIFIED.name,
            outcome=Outcome.SUCCESS if result.ok else Outcome.FAILURE,
            reason=result.problem,
            meta={
                "rows": result.rows,
                "sequence_from": result.first_sequence,
                "head_sequence": result.head_sequence,
                "first_bad_sequence": result.first_bad_sequence,
            },
        )
    return result
