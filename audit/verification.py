"""Walk the chain and report the first sequence number that does not verify.

Reads values_list tuples in keyset chunks (sequence > last), never model instances, so the
walk stays fast and in constant memory on millions of rows.
"""

import hmac
import multiprocessing
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from audit import chain
from audit.models import AuditCheckpoint, AuditEvent, ChainHead

_COLUMNS = (*chain.CONTENT_FIELDS, "prev_hash", "hash")
_SEQUENCE = chain.CONTENT_FIELDS.index("sequence")
# PostgreSQL formats occurred_at exactly as chain.format_time does: no datetime objects made.
_PG_TIME = "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_PG_COLUMNS = ", ".join(_PG_TIME if name == "occurred_at" else name for name in _COLUMNS)
# Column names are this module's constants, never input: the f-string is safe.
_PG_SELECT = (
    f"SELECT {_PG_COLUMNS} FROM audit_auditevent "  # noqa: S608
    "WHERE sequence >= %s ORDER BY sequence LIMIT %s"
)


def _chunk(start: int, size: int) -> list[tuple]:
    """Rows with sequence >= start, in order: raw SQL on PostgreSQL, the ORM elsewhere."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_PG_SELECT, [start, size])
            return cursor.fetchall()
    return list(
        AuditEvent.objects.filter(sequence__gte=start)
        .order_by("sequence")
        .values_list(*_COLUMNS)[:size]
    )


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    rows: int
    head_sequence: int
    first_bad_sequence: int | None = None
    problem: str = ""
    # 1, or where the walk started after a pruned prefix anchored by a signed checkpoint.
    first_sequence: int = 1


def _bad(rows: int, head: int, sequence: int, problem: str) -> VerificationResult:
    return VerificationResult(False, rows, head, first_bad_sequence=sequence, problem=problem)


def _checkpoints(key: str) -> tuple[dict[int, str], int, VerificationResult | None]:
    """Checkpoints by sequence, the newest one's sequence, and a failure for a forged one."""
    by_sequence: dict[int, str] = {}
    latest = 0
    for sequence, head_hash, created_at, signature in AuditCheckpoint.objects.order_by(
        "id"
    ).values_list("sequence", "hash", "created_at", "signature"):
        expected = chain.checkpoint_signature(
            key, sequence=sequence, head_hash=head_hash, created_at=created_at
        )
        if not hmac.compare_digest(expected, signature):
            return {}, 0, _bad(0, 0, sequence, "checkpoint signature does not verify")
        by_sequence[sequence] = head_hash
        latest = max(latest, sequence)
    return by_sequence, latest, None


def _start(checkpoints: dict[int, str]) -> tuple[str, int, int]:
    """Where the walk starts: the genesis, or after a pruned prefix that a signed checkpoint
    anchors (the first remaining row's prev_hash is the checkpointed hash of the row before)."""
    sealed = AuditEvent.objects.filter(sequence__isnull=False)
    first = sealed.order_by("sequence").values_list("sequence", "prev_hash").first()
    if first and first[0] > 1 and checkpoints.get(first[0] - 1) == first[1]:
        return first[1], first[0], 0
    return chain.GENESIS_HASH, 1, 0


class _Walk:
    """The sequential part of verification: gaps, links and checkpoints, row by row."""

    def __init__(self, prev_hash: str, expected: int, checkpoints: dict[int, str]):
        self.prev_hash, self.expected, self.rows = prev_hash, expected, 0
        self.checkpoints = checkpoints

    def check(self, batch: list[tuple], bad_hash: int | None) -> VerificationResult | None:
        # The same order of checks per row as reading the chain by hand: gap, link, content,
        # checkpoint; `bad_hash` is the batch's first row whose content hash does not match.
        for index, row in enumerate(batch):
            sequence = row[_SEQUENCE]
            if sequence != self.expected:
                return _bad(self.rows, sequence, self.expected, "row missing (gap in sequence)")
            if row[-2] != self.prev_hash:
                return _bad(self.rows, sequence, sequence, "prev_hash does not match previous row")
            if index == bad_hash:
                return _bad(self.rows, sequence, sequence, "row content does not match its hash")
            if self.checkpoints.get(sequence, row[-1]) != row[-1]:
                return _bad(self.rows, sequence, sequence, "row differs from a signed checkpoint")
            self.prev_hash, self.expected, self.rows = row[-1], sequence + 1, self.rows + 1
        return None


def chain_verify(
    *,
    chunk_size: int | None = None,
    key: str | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> VerificationResult:
    """Verify every link, every checkpoint signature, and that no checkpointed tail is gone.

    With workers > 1, chunks are hashed in that many processes while the next chunks are read
    (not inside a Celery prefork worker: its processes may not start children).
    """
    chunk_size = chunk_size or settings.AUDIT_CHUNK_SIZE
    checkpoints, latest_checkpoint, forged = _checkpoints(key or settings.AUDIT_CHECKPOINT_KEY)
    if forged:
        return forged
    prev_hash, start, _ = _start(checkpoints)
    first_sequence = start
    walk = _Walk(prev_hash, start, checkpoints)
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    pending: deque = deque()
    try:
        while True:
            batch = _chunk(start, chunk_size)
            if batch:
                start = batch[-1][_SEQUENCE] + 1
                hashed = pool.submit(chain.first_unhashed, batch) if pool else None
                pending.append((batch, hashed))
            # Keep `workers` chunks in flight; drain everything once the table is read.
            while pending and (not batch or len(pending) > workers):
                done, hashed = pending.popleft()
                bad_hash = hashed.result() if hashed else chain.first_unhashed(done)
                failure = walk.check(done, bad_hash)
                if failure:
                    return failure
                if progress:
                    progress(len(done))
            if not batch:
                break
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    last = walk.expected - 1
    head = ChainHead.objects.filter(pk=1).values_list("sequence", flat=True).first() or 0
    if max(latest_checkpoint, head) > last:
        return _bad(walk.rows, last, last + 1, "tail cut: rows after the last one are missing")
    return VerificationResult(True, walk.rows, last, first_sequence=first_sequence)


def link_verifies(event: AuditEvent) -> bool | None:
    """Whether one row's hash matches its content and its predecessor's hash (2 cheap reads);
    None for a row not sealed yet (it has no link to check)."""
    if event.sequence is None:
        return None
    if event.sequence == 1:
        previous_hash = chain.GENESIS_HASH
    else:
        previous_hash = (
            AuditEvent.objects.filter(sequence=event.sequence - 1)
            .values_list("hash", flat=True)
            .first()
        )
    values = tuple(getattr(event, name) for name in chain.CONTENT_FIELDS)
    return event.prev_hash == previous_hash and chain.link_hash(event.prev_hash, values) == (
        event.hash
    )
