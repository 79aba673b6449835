"""Walk the chain and report the first sequence number that does not verify.

Reads values_list tuples in keyset chunks (sequence > last), never model instances, so the
walk stays fast and in constant memory on millions of rows.
"""

import hmac
import multiprocessing
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import connection

from audit import actions, chain, merkle, signing
from audit.checkpoint_files import checkpoint_files_read, checkpoint_store
from audit.models import AuditCheckpoint, AuditEvent, ChainHead
from audit.tree import tree_frontier
from audit.witness import WitnessRefusal, cosignature_matches, cosignatures_read

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


def _chunk(start: int, size: int) -> list[tuple[Any, ...]]:
    """Rows with sequence >= start, in order: raw SQL on PostgreSQL, the ORM elsewhere."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_PG_SELECT, [start, size])
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            return rows
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


@dataclass(frozen=True)
class Anchor:
    """What a signed checkpoint says about the chain at its sequence."""

    hash: str
    root: str  # "" for a legacy HMAC checkpoint


def _signature_verifies(document: dict[str, Any], key: str, public_key: Ed25519PublicKey) -> bool:
    created_at = document["created_at"]
    if document["algorithm"] == AuditCheckpoint.Algorithm.HMAC_SHA256:
        expected = chain.checkpoint_signature(
            key, sequence=document["sequence"], head_hash=document["hash"], created_at=created_at
        )
        return hmac.compare_digest(expected, document["signature"])
    statement = chain.checkpoint_statement(
        sequence=document["sequence"],
        head_hash=document["hash"],
        root=document["root"],
        created_at=created_at,
    )
    return signing.verifies(public_key, statement, document["signature"])


def checkpoint_verifies(checkpoint: AuditCheckpoint) -> bool:
    """One stored checkpoint's signature, with the configured keys."""
    document = {name: getattr(checkpoint, name) for name in _CHECKPOINT_FIELDS if name != "id"}
    public_key = signing.signing_key().public_key()
    return _signature_verifies(document, settings.AUDIT_CHECKPOINT_KEY, public_key)


_CHECKPOINT_FIELDS = ("id", "sequence", "hash", "root", "created_at", "algorithm", "signature")


def _stored_checkpoints() -> list[dict[str, Any]]:
    return [
        dict(zip(_CHECKPOINT_FIELDS, values, strict=True))
        for values in AuditCheckpoint.objects.order_by("id").values_list(*_CHECKPOINT_FIELDS)
    ]


def _checkpoints(
    key: str, public_key: Ed25519PublicKey, exported: list[dict[str, Any]] | None
) -> tuple[dict[int, Anchor], int, VerificationResult | None]:
    """Checkpoints by sequence (the database's, plus those exported to a directory), the newest
    one's sequence, and a failure for a forged, altered or deleted one."""
    stored = _stored_checkpoints()
    by_id = {document["id"]: document for document in stored}
    for document in exported or []:
        if document["id"] not in by_id:
            problem = "checkpoint exported outside the database is missing from it"
            return {}, 0, _bad(0, 0, document["sequence"], problem)
        row = by_id[document["id"]]
        if chain.format_time(row["created_at"]) != document["created_at"] or any(
            row[name] != document[name] for name in ("sequence", "hash", "root", "signature")
        ):
            problem = "checkpoint differs from its copy outside the database"
            return {}, 0, _bad(0, 0, document["sequence"], problem)
    by_sequence: dict[int, Anchor] = {}
    latest = 0
    for document in [*stored, *(exported or [])]:
        if not _signature_verifies(document, key, public_key):
            return {}, 0, _bad(0, 0, document["sequence"], "checkpoint signature does not verify")
        by_sequence[document["sequence"]] = Anchor(document["hash"], document["root"])
        latest = max(latest, document["sequence"])
    missing = _checkpoints_named_by_the_trail() - by_id.keys()
    if missing:
        problem = f"checkpoint(s) {sorted(missing)} named by the trail are missing"
        return {}, 0, _bad(0, 0, 0, problem)
    return by_sequence, latest, None


def _witness_check(
    against: str,
    witness_key: Ed25519PublicKey,
    exported: list[dict[str, Any]],
    stored: list[dict[str, Any]],
) -> VerificationResult | None:
    """Every cosignature of the witness verifies and matches its exported checkpoint, and the
    newest signed checkpoint (in the database or exported) is cosigned: the witness checked
    that its tree extends every tree it cosigned before."""
    try:
        cosigned = cosignatures_read(checkpoint_store(against), witness_key)
    except WitnessRefusal as error:
        return _bad(0, 0, 0, f"witness cosignature forged: {error}")
    by_id = {document["id"]: document for document in exported}
    for checkpoint_id, cosignature in cosigned.items():
        document = by_id.get(checkpoint_id)
        if document is None or not cosignature_matches(cosignature, document):
            problem = "witness cosignature does not match the exported checkpoint"
            return _bad(0, 0, cosignature["sequence"], problem)
    signed = [d for d in [*stored, *exported] if d["algorithm"] == "Ed25519"]
    if signed:
        newest = max(signed, key=lambda document: (document["sequence"], document["id"]))
        if newest["id"] not in cosigned:
            problem = (
                f"the newest checkpoint ({newest['id']}, tree size {newest['sequence']}) is not "
                "cosigned by the witness (it refused it, or has not run since)"
            )
            return _bad(0, 0, newest["sequence"], problem)
    return None


def _checkpoints_named_by_the_trail() -> set[int]:
    """Ids of the checkpoints the trail's own audit.checkpoint.created rows recorded."""
    rows = AuditEvent.objects.filter(action=actions.CHECKPOINT_CREATED.name)
    return {int(target) for target in rows.values_list("target_id", flat=True) if target.isdigit()}


def _start(checkpoints: dict[int, Anchor]) -> tuple[str, int, int]:
    """Where the walk starts: the genesis, or after a pruned prefix that a signed checkpoint
    anchors (the first remaining row's prev_hash is the checkpointed hash of the row before)."""
    sealed = AuditEvent.objects.filter(sequence__isnull=False)
    first = sealed.order_by("sequence").values_list("sequence", "prev_hash").first()
    # A sealed row has both; their columns are nullable for the rows not sealed yet.
    sequence, prev_hash = first if first else (None, None)
    if sequence is None or prev_hash is None:
        return chain.GENESIS_HASH, 1, 0
    anchor = checkpoints.get(sequence - 1)
    if sequence > 1 and anchor is not None and anchor.hash == prev_hash:
        return prev_hash, sequence, 0
    return chain.GENESIS_HASH, 1, 0


class _Walk:
    """The sequential part of verification: gaps, links and checkpoints, row by row."""

    def __init__(self, prev_hash: str, expected: int, checkpoints: dict[int, Anchor]):
        self.prev_hash, self.expected, self.rows = prev_hash, expected, 0
        self.checkpoints = checkpoints
        # The Merkle tree of the rows walked so far; after a pruned prefix, from the stored
        # nodes, and not checked (None) when those do not reach the prefix's last leaf.
        self.tree: merkle.Frontier | None = merkle.Frontier()
        if expected > 1:
            try:
                self.tree = tree_frontier(expected - 1)
            except LookupError:
                self.tree = None

    def check(
        self, batch: list[tuple[Any, ...]], bad_hash: int | None
    ) -> VerificationResult | None:
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
            if self.tree is not None:
                self.tree.append(merkle.leaf_hash(row[-1]))
            anchor = self.checkpoints.get(sequence)
            if anchor is not None and anchor.hash != row[-1]:
                return _bad(self.rows, sequence, sequence, "row differs from a signed checkpoint")
            tree = self.tree
            if anchor is not None and anchor.root and tree and anchor.root != tree.root().hex():
                problem = "Merkle root differs from a signed checkpoint"
                return _bad(self.rows, sequence, sequence, problem)
            self.prev_hash, self.expected, self.rows = row[-1], sequence + 1, self.rows + 1
        return None


def chain_verify(
    *,
    chunk_size: int | None = None,
    key: str | None = None,
    progress: Callable[[int], object] | None = None,
    workers: int = 1,
    public_key: Ed25519PublicKey | None = None,
    against: str | None = None,
    witness_key: Ed25519PublicKey | None = None,
) -> VerificationResult:
    """Verify every link, the Merkle tree and every checkpoint signature (Ed25519 ones with the
    public key alone), and that no checkpointed tail is gone. With `against`, the checkpoints
    exported to that directory or bucket (s3://bucket/prefix) are checked too: a chain
    rewritten and re-signed in the database still disagrees with them. With `witness_key`, the
    witness's cosignatures there are checked and the newest checkpoint must be cosigned.

    With workers > 1, chunks are hashed in that many processes while the next chunks are read
    (not inside a Celery prefork worker: its processes may not start children).
    """
    chunk_size = chunk_size or settings.AUDIT_CHUNK_SIZE
    public_key = public_key or signing.signing_key().public_key()
    exported = checkpoint_files_read(against) if against else None
    checkpoints, latest_checkpoint, forged = _checkpoints(
        key or settings.AUDIT_CHECKPOINT_KEY, public_key, exported
    )
    if forged:
        return forged
    if against and exported is not None and witness_key is not None:
        unwitnessed = _witness_check(against, witness_key, exported, _stored_checkpoints())
        if unwitnessed:
            return unwitnessed
    prev_hash, start, _ = _start(checkpoints)
    first_sequence = start
    walk = _Walk(prev_hash, start, checkpoints)
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    pending: deque[tuple[list[tuple[Any, ...]], Future[int | None] | None]] = deque()
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
    previous_hash: str | None
    if event.sequence == 1:
        previous_hash = chain.GENESIS_HASH
    else:
        previous_hash = (
            AuditEvent.objects.filter(sequence=event.sequence - 1)
            .values_list("hash", flat=True)
            .first()
        )
    if event.prev_hash is None or event.prev_hash != previous_hash:
        return False
    values = tuple(getattr(event, name) for name in chain.CONTENT_FIELDS)
    return chain.link_hash(event.prev_hash, values) == event.hash
