"""The sealer: gives committed audit rows their chain position, previous hash and hash.

Writers only INSERT (audit.services.audit_event_record): no chain head, no lock, no waiting
for another writer's commit. The sealer runs as one leader at a time (a transaction-scoped
PostgreSQL advisory lock; a second sealer finds it taken and does nothing) and fills each
row's empty seal fields once (the trigger of migration 0004 allows nothing else).

Which rows, in which order (PostgreSQL): every row carries its writer's transaction id `xid`
(set by a trigger). The xmin of a fresh snapshot is the oldest transaction still running, so
every transaction below it has ended: its rows are committed and visible, or rolled back and
gone, and no row with a lower xid can ever appear again. The sealer takes the unsealed rows
below that horizon in (xid, id) order. A slow transaction holds the horizon down, so its rows
wait (they are never skipped: the sealer picks unsealed rows, not a range past a watermark)
and get sealed right after it ends, with the next batch. A rolled-back transaction leaves no
row and so no gap. The chain's order is therefore "sealed order": transactions by their id
(the order in which they first wrote), each transaction's rows in the order it wrote them.

SQLite (make run) has one writer at a time: the same code seals every unsealed row in id
order, right after the writing transaction commits (audit_event_record asks for it).
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from audit import chain, merkle, metrics
from audit.models import AuditEvent, ChainHead
from audit.tree import tree_ensure, tree_nodes_store

# One advisory lock id for "the sealer" (64 bits of a SHA-256, like billing.db's locks).
SEAL_LOCK_ID = int.from_bytes(hashlib.sha256(b"audit:sealer").digest()[:8], "big", signed=True)

_TABLE = AuditEvent._meta.db_table
_HASHED = tuple(name for name in chain.CONTENT_FIELDS if name != "sequence")
_SEQUENCE_AT = chain.CONTENT_FIELDS.index("sequence")
# PostgreSQL spells occurred_at exactly as chain.format_time does, as the verifier reads it.
_PG_TIME = "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_PG_COLUMNS = ", ".join(_PG_TIME if name == "occurred_at" else name for name in _HASHED)
# Column names are this module's constants, never input: the f-strings are safe.
_PG_PENDING = (
    f"SELECT id, {_PG_COLUMNS} FROM {_TABLE} "  # noqa: S608
    "WHERE sequence IS NULL AND (xid < %s OR xid = %s) ORDER BY xid, id LIMIT %s"
)
# The hashes travel as two space-separated strings, split by PostgreSQL: Django's client-side
# binding quotes a text[] element by element in Python, 17 ms for a batch of 5,000 rows'
# hashes, where one string costs a fraction of a ms. The batch's id range changes nothing in
# what is updated; it lets the planner read the rows by primary key instead of hashing the
# whole table on every batch (its estimate of a fresh trail is often far off).
_PG_FILL = (
    f"UPDATE {_TABLE} AS e SET sequence = s.sequence, prev_hash = s.prev_hash, hash = s.hash "  # noqa: S608
    "FROM unnest(%s::bigint[], %s::bigint[], string_to_array(%s, ' '), string_to_array(%s, ' ')) "
    "AS s(id, sequence, prev_hash, hash) WHERE e.id = s.id AND e.id BETWEEN %s AND %s"
)
_PG_BACKLOG = (
    "SELECT count(*), min(occurred_at), statement_timestamp() FROM ("  # noqa: S608
    f"SELECT occurred_at FROM {_TABLE} WHERE sequence IS NULL ORDER BY xid, id LIMIT %s) AS w"
)
_FILL = f"UPDATE {_TABLE} SET sequence = %s, prev_hash = %s, hash = %s WHERE id = %s"  # noqa: S608


@dataclass(frozen=True)
class SealBacklog:
    """Rows waiting for the sealer: how many (counted up to a cap) and how old the oldest is."""

    rows: int
    oldest: datetime | None
    lag_seconds: float


def _is_leader(cursor: CursorWrapper) -> bool:
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_LOCK_ID])
    leader: bool = cursor.fetchone()[0]
    return leader


def _pending_postgres(
    cursor: CursorWrapper, limit: int, include_own_transaction: bool
) -> list[tuple[Any, ...]]:
    # A new statement, a new snapshot (READ COMMITTED): everything below its xmin has ended.
    cursor.execute(
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
        "pg_current_xact_id_if_assigned()::text::bigint"
    )
    horizon, own = cursor.fetchone()
    cursor.execute(_PG_PENDING, [horizon, own if include_own_transaction else -1, limit])
    rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def _pending_serial(limit: int) -> list[tuple[Any, ...]]:
    return list(
        AuditEvent.objects.filter(sequence__isnull=True)
        .order_by("id")
        .values_list("id", *_HASHED)[:limit]
    )


def sealed_head() -> tuple[int, str]:
    """(sequence, hash) of the newest sealed row; (0, genesis) for an empty trail."""
    newest = (
        AuditEvent.objects.filter(sequence__isnull=False)
        .order_by("-sequence")
        .values_list("sequence", "hash")
        .first()
    )
    # A sealed row has both its sequence and its hash (NULL only before sealing).
    return cast(tuple[int, str] | None, newest) or (0, chain.GENESIS_HASH)


def _chain(rows: list[tuple[Any, ...]], head: tuple[int, str]) -> list[tuple[int, int, str, str]]:
    """(id, sequence, prev_hash, hash) for `rows` (id + _HASHED values), after `head`."""
    sequence, prev_hash = head
    seals = []
    for row in rows:
        sequence += 1
        values = list(row[1:])
        values.insert(_SEQUENCE_AT, sequence)
        row_hash = chain.link_hash(prev_hash, tuple(values))
        seals.append((row[0], sequence, prev_hash, row_hash))
        prev_hash = row_hash
    return seals


def _fill(cursor: CursorWrapper, seals: list[tuple[int, int, str, str]]) -> None:
    if connection.vendor == "postgresql":
        ids, sequences, prev_hashes, hashes = zip(*seals, strict=True)
        cursor.execute(
            _PG_FILL,
            [
                list(ids),
                list(sequences),
                " ".join(prev_hashes),
                " ".join(hashes),
                min(ids),
                max(ids),
            ],
        )
    else:
        cursor.executemany(_FILL, [(seq, prev, digest, pk) for pk, seq, prev, digest in seals])


def _tree_extend(size: int, row_hashes: list[str]) -> None:
    """Add the new rows as leaves of the Merkle tree and store the subtrees they complete."""
    frontier = tree_ensure(size)
    finished = []
    for row_hash in row_hashes:
        finished.extend(frontier.append(merkle.leaf_hash(row_hash)))
    tree_nodes_store(finished)


def audit_rows_seal(*, limit: int | None = None, include_own_transaction: bool = False) -> int:
    """Seal one batch of rows whose writing transactions have ended; the number sealed.

    Returns 0 when there is nothing to seal or another sealer holds the lead. With
    include_own_transaction=True (tests that work inside one transaction) the caller's own
    uncommitted rows count as ended too.
    """
    limit = limit or settings.AUDIT_SEAL_BATCH_SIZE
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if not _is_leader(cursor):
                return 0
            rows = _pending_postgres(cursor, limit, include_own_transaction)
        else:
            rows = _pending_serial(limit)
        if not rows:
            return 0
        # Read under the lead: the previous batch has committed, so this is the real head.
        head = sealed_head()
        seals = _chain(rows, head)
        _fill(cursor, seals)
        _tree_extend(head[0], [seal[3] for seal in seals])
        _, sequence, _, head_hash = seals[-1]
        ChainHead.objects.update_or_create(pk=1, defaults={"sequence": sequence, "hash": head_hash})
    return len(seals)


def audit_seal_pending(
    *, limit: int | None = None, include_own_transaction: bool = False, max_batches: int = 1000
) -> int:
    """Seal batch after batch until caught up (or max_batches); the number of rows sealed.
    Sets the seal-lag gauges afterwards."""
    limit = limit or settings.AUDIT_SEAL_BATCH_SIZE
    total = 0
    for _ in range(max_batches):
        sealed = audit_rows_seal(limit=limit, include_own_transaction=include_own_transaction)
        total += sealed
        if sealed < limit:
            break
    metrics_refresh()
    return total


def seal_backlog(*, cap: int = 100_000) -> SealBacklog:
    """Unsealed rows (counted up to `cap`) and the age of the oldest, read on the sealer's
    partial index: a cost bounded by the backlog, never by the size of the trail."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_PG_BACKLOG, [cap])
            rows, oldest, now = cursor.fetchone()
    else:
        waiting = AuditEvent.objects.filter(sequence__isnull=True).order_by("id")
        times = list(waiting.values_list("occurred_at", flat=True)[:cap])
        rows, oldest, now = len(times), min(times, default=None), datetime.now(UTC)
    if oldest is None:
        return SealBacklog(rows, None, 0.0)
    return SealBacklog(rows, oldest, max(0.0, (now - oldest).total_seconds()))


def metrics_refresh() -> SealBacklog:
    backlog = seal_backlog()
    metrics.SEAL_LAG.set(backlog.lag_seconds)
    metrics.UNSEALED.set(backlog.rows)
    return backlog
