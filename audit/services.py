"""Writes to the audit trail. Every row goes through audit_event_record(); audit.sealing
chains it."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connection, transaction

from audit import actions, chain, metrics, signing
from audit.checkpoint_files import checkpoint_export, checkpoint_locations
from audit.errors import AuditError, UnknownAuditAction
from audit.meta import clean_meta
from audit.models import ActorRole, ActorType, AuditCheckpoint, AuditEvent, Outcome
from audit.privacy import username_for_trail
from audit.sealing import audit_seal_pending, sealed_head
from audit.tree import tree_ensure, tree_root
from config import context
from config.logging import redact_text
from staff.roles import role_for_groups

if TYPE_CHECKING:  # imported where used at run time: audit.verification imports this module
    from audit.verification import VerificationResult

log = structlog.get_logger(__name__)

# The rows recorded while audit_rows_batched() is open, in recording order (None: not batching).
_batched_rows: ContextVar[list[AuditEvent] | None] = ContextVar("audit_batched_rows", default=None)


@dataclass(frozen=True)
class Target:
    type: str = ""
    id: str | int = ""  # a row's pk may be given as is: stored as text (_text)
    repr: str = ""


@dataclass(frozen=True)
class ActorSnapshot:
    type: str
    id: str
    name: str
    role: str


def actor_snapshot(actor: context.Actor, *, user: User | None = None) -> ActorSnapshot:
    """Who acted, as stored: type, id, username (never the email) and role at that moment."""
    if actor.kind != ActorType.USER or (actor.user_id is None and user is None):
        kind = actor.kind if actor.kind in ActorType.values else ActorType.SYSTEM
        return ActorSnapshot(kind, "", kind, ActorRole.SYSTEM)
    if user is None and actor.user_id is not None:  # one of the two is set (checked above)
        user = get_user_model().objects.filter(pk=actor.user_id).first()
    if user is None:
        return ActorSnapshot(ActorType.USER, str(actor.user_id), "", ActorRole.USER)
    name = username_for_trail(user.get_username())
    return ActorSnapshot(ActorType.USER, str(user.pk), name, _role_of(user))


def _role_of(user: User) -> str:
    if user.is_superuser:
        return ActorRole.OWNER
    # Group names -> role come from staff's one registry, as the seeded groups do: a role's
    # group renamed in code is renamed for both.
    groups = list(user.groups.values_list("name", flat=True))
    role = role_for_groups(groups)
    if role is not None:
        return role.audit_role
    if user.is_staff:
        # Staff whose groups are no role's (renamed by hand, made in the admin): recorded as
        # such, never as a customer, and said in the log so someone fixes the group.
        log.warning("audit.actor_role.unknown_staff_group", user_id=user.pk, groups=sorted(groups))
        return ActorRole.STAFF
    return ActorRole.USER


def _text(value: object, limit: int) -> str:
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
            now: datetime = cursor.fetchone()[0]
            return now
    return datetime.now(UTC)


def _seal_after_commit() -> None:
    """SQLite (make run, one writer at a time): seal right away, as the same sealer would."""
    audit_seal_pending()


def audit_event_record(
    *,
    action: str,
    actor: context.Actor | None = None,
    actor_user: User | None = None,
    target: Target = Target(),
    outcome: str = Outcome.SUCCESS,
    reason: str = "",
    stripe_event_id: str = "",
    request_id: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    meta: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one unsealed row to the trail, in the caller's transaction (or its own if none).

    The actor, request id and client default to the current context (config.context), so a
    Celery task records whoever caused it. One INSERT, no lock: writers never wait for each
    other. The sealer (audit.sealing) chains the row once its transaction has committed; on
    SQLite that happens right after the commit.
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
    event = AuditEvent(**fields)
    batched = _batched_rows.get()
    if batched is not None:
        batched.append(event)  # inserted with the batch's other rows (audit_rows_batched)
        return event
    event.save(force_insert=True)
    _count_on_commit([action])
    return event


def _count_on_commit(recorded: list[str]) -> None:
    # Counted when the rows commit: a rolled-back change leaves no row and no count.
    def count() -> None:
        for action in recorded:
            metrics.EVENTS.labels(action=action).inc()

    transaction.on_commit(count)
    if connection.vendor != "postgresql":
        transaction.on_commit(_seal_after_commit)


@contextmanager
def audit_rows_batched() -> Iterator[None]:
    """Hold the rows audit_event_record appends inside the block and insert them when it ends,
    in one multi-row INSERT, in the order they were recorded (the sealer chains a transaction's
    rows in id order: cause before effect holds). Used inside one transaction (billing's batch
    of events, through stripe_event_batch): if the block raises, its rows are dropped with the
    rolled-back transaction's other writes. Nested use joins the outer batch."""
    if _batched_rows.get() is not None:
        yield
        return
    rows: list[AuditEvent] = []
    token = _batched_rows.set(rows)
    try:
        yield
    finally:
        _batched_rows.reset(token)
    if rows:
        AuditEvent.objects.bulk_create(rows)
        _count_on_commit([row.action for row in rows])


def audit_checkpoint_create(*, at: int | None = None, key: str | None = None) -> AuditCheckpoint:
    """Sign the newest sealed row and the Merkle root of the rows up to it (or up to sequence
    `at`, to anchor a pruned prefix) with the Ed25519 signing key, store the checkpoint
    (append-only) and, after commit, write it to AUDIT_CHECKPOINT_DIR and AUDIT_CHECKPOINT_BUCKET.

    `key` signs a legacy HMAC-SHA256 checkpoint instead (tests of trails from before Ed25519).
    """
    with transaction.atomic():
        sequence, head_hash = sealed_head()
        if at is not None:
            at_hash = AuditEvent.objects.filter(sequence=at).values_list("hash", flat=True).first()
            if at_hash is None:
                raise AuditError(f"No audit row with sequence {at}.")
            sequence, head_hash = at, at_hash
        created_at = _database_now()
        if key is not None:
            checkpoint = AuditCheckpoint(
                sequence=sequence, hash=head_hash, created_at=created_at,
                algorithm=AuditCheckpoint.Algorithm.HMAC_SHA256,
                signature=chain.checkpoint_signature(
                    key, sequence=sequence, head_hash=head_hash, created_at=created_at
                ),
            )  # fmt: skip
        else:
            tree_ensure(sequence)
            root = tree_root(sequence).hex()
            statement = chain.checkpoint_statement(
                sequence=sequence, head_hash=head_hash, root=root, created_at=created_at
            )
            checkpoint = AuditCheckpoint(
                sequence=sequence, hash=head_hash, root=root, created_at=created_at,
                algorithm=AuditCheckpoint.Algorithm.ED25519, signature=signing.sign(statement),
            )  # fmt: skip
        checkpoint.save()
        locations = checkpoint_locations()
        if locations:
            transaction.on_commit(lambda: checkpoint_export(checkpoint, locations))
    return checkpoint


def audit_checkpoint_sign(*, at: int | None = None) -> AuditCheckpoint:
    """Create a checkpoint and record that it was made (audit_checkpoint, the beat task).

    One transaction: the export to the directory or bucket runs after both committed, so an
    export that fails (loudly) still leaves the checkpoint named by the trail."""
    with transaction.atomic():
        checkpoint = audit_checkpoint_create(at=at)
        audit_event_record(
            action=actions.CHECKPOINT_CREATED.name,
            target=Target("audit_checkpoint", str(checkpoint.pk), str(checkpoint)),
            meta={"checkpoint_sequence": checkpoint.sequence},
        )
    return checkpoint


def chain_verification_run(
    *,
    chunk_size: int | None = None,
    progress: Callable[[int], object] | None = None,
    record: bool = True,
    workers: int = 1,
    public_key: Ed25519PublicKey | None = None,
    against: str | None = None,
    witness_key: Ed25519PublicKey | None = None,
) -> "VerificationResult":
    """Verify the chain, count the outcome, and (unless record=False) append the result."""
    from audit.verification import chain_verify

    result = chain_verify(
        chunk_size=chunk_size,
        progress=progress,
        workers=workers,
        public_key=public_key,
        against=against,
        witness_key=witness_key,
    )
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
