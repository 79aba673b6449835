"""Writers append without waiting for each other; the sealer chains committed rows in order.

Committed for real (no test transaction around them), on separate connections, as Celery tasks
and web requests commit. tests/conftest.py clears the audit rows afterwards.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections, transaction

from audit.models import AuditEvent, ChainHead
from audit.sealing import SEAL_LOCK_ID, audit_rows_seal, audit_seal_pending
from audit.services import audit_event_record
from audit.verification import chain_verify
from config.context import Actor
from tests.servers import require_postgres


@pytest.fixture
def committed(transactional_db):
    require_postgres(connection)


def record(tag: str, n: int = 0) -> AuditEvent:
    return audit_event_record(
        action="entitlements.grant.created",
        actor=Actor(kind="system"),
        meta={"plan": tag, "count": n},
    )


def sequence_of(event: AuditEvent) -> int | None:
    return AuditEvent.objects.filter(pk=event.pk).values_list("sequence", flat=True).get()


class OpenTransaction:
    """A writer on its own connection that writes one audit row and keeps its transaction open
    until told to commit."""

    def __init__(self, tag: str):
        self.tag, self.written, self.release = tag, threading.Event(), threading.Event()
        self.event: AuditEvent | None = None
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        try:
            with transaction.atomic():
                self.event = record(self.tag)
                self.written.set()
                self.release.wait(30)
        finally:
            connections.close_all()

    def __enter__(self):
        self.thread.start()
        assert self.written.wait(10), f"{self.tag} did not write"
        return self

    def commit(self):
        self.release.set()
        self.thread.join(30)

    def __exit__(self, *exc):
        self.commit()


def test_a_writer_never_waits_for_another_writers_commit(committed):
    with OpenTransaction("slow") as slow, connection.cursor() as cursor:
        # Were the second writer to queue behind the first, this would fail after 2 s.
        cursor.execute("SET lock_timeout = '2s'")
        try:
            fast = record("fast")  # autocommit: committed when this returns
        finally:
            cursor.execute("SET lock_timeout = 0")
        assert slow.thread.is_alive()
        assert AuditEvent.objects.filter(pk=fast.pk).exists()
    assert {row.meta["plan"] for row in AuditEvent.objects.all()} == {"slow", "fast"}


def test_a_slow_transaction_is_sealed_after_its_commit_never_skipped_nor_overtaken(committed):
    first = record("first")
    assert audit_seal_pending() == 1
    with OpenTransaction("older") as older, OpenTransaction("slow") as slow:
        older.commit()  # older's xid is below slow's: sealable while slow is still open
        later = record("later")  # committed, but its transaction id is above slow's
        assert audit_seal_pending() == 1
        assert sequence_of(older.event) == 2
        # Slow still runs (its row is not even visible here): later waits instead of taking
        # the position before slow's row.
        assert sequence_of(later) is None
        assert audit_seal_pending() == 0
        assert AuditEvent.objects.filter(sequence__isnull=False).count() == 2
        slow.commit()
    assert audit_seal_pending() == 2
    chain = list(AuditEvent.objects.order_by("sequence").values_list("sequence", "meta"))
    assert [(sequence, meta["plan"]) for sequence, meta in chain] == [
        (1, "first"),
        (2, "older"),
        (3, "slow"),
        (4, "later"),
    ]
    assert sequence_of(first) == 1
    assert chain_verify().ok


def test_rolled_back_rows_leave_no_gap(committed):
    kept = record("kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        record("undone", 1)
        record("undone", 2)
        raise RuntimeError("undo the transaction")
    with transaction.atomic():
        record("kept", 1)
        try:
            with transaction.atomic():
                record("undone", 3)
                raise RuntimeError("undo the savepoint")
        except RuntimeError:
            pass
        record("kept", 2)
    assert audit_seal_pending() == 3
    rows = list(AuditEvent.objects.order_by("sequence"))
    assert [(row.sequence, row.meta["count"]) for row in rows] == [(1, 0), (2, 1), (3, 2)]
    assert rows[0].pk == kept.pk
    assert rows[1].prev_hash == rows[0].hash and rows[2].prev_hash == rows[1].hash
    assert chain_verify().ok


THREADS = 6
TRANSACTIONS = 5
ROWS_PER_TRANSACTION = 5


def test_concurrent_writers_and_a_running_sealer_make_one_gapless_chain(committed):
    start = threading.Barrier(THREADS + 1)
    writing = threading.Event()
    writing.set()

    def writer(n):
        try:
            start.wait()
            for t in range(TRANSACTIONS):
                with transaction.atomic():
                    for i in range(ROWS_PER_TRANSACTION):
                        record(f"w{n}t{t}", i)
        finally:
            connections.close_all()

    def sealer():
        try:
            start.wait()
            sealed = 0
            while writing.is_set():
                sealed += audit_rows_seal(limit=7)
            return sealed
        finally:
            connections.close_all()

    with ThreadPoolExecutor(THREADS + 1) as pool:
        sealing = pool.submit(sealer)
        writers = [pool.submit(writer, n) for n in range(THREADS)]
        for future in writers:
            future.result()
        writing.clear()
        sealed_while_writing = sealing.result()
    sealed_after = audit_seal_pending()

    total = THREADS * TRANSACTIONS * ROWS_PER_TRANSACTION
    assert sealed_while_writing + sealed_after == total
    chain = list(AuditEvent.objects.order_by("sequence").values_list("sequence", "meta"))
    assert [sequence for sequence, _ in chain] == list(range(1, total + 1))
    # A transaction's rows are consecutive in the chain, in the order it wrote them.
    positions: dict[str, list[tuple[int, int]]] = {}
    for sequence, meta in chain:
        positions.setdefault(meta["plan"], []).append((sequence, meta["count"]))
    for rows in positions.values():
        sequences = [sequence for sequence, _ in rows]
        assert sequences == list(range(sequences[0], sequences[0] + ROWS_PER_TRANSACTION))
        assert [count for _, count in rows] == list(range(ROWS_PER_TRANSACTION))
    assert ChainHead.objects.get().sequence == total
    assert chain_verify().ok


def test_a_second_sealer_does_nothing_while_the_leader_seals(committed):
    record("a")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_ID])  # we lead

        def other_sealer():
            try:
                return audit_rows_seal()
            finally:
                connections.close_all()

        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(other_sealer).result(timeout=10) == 0
    assert audit_seal_pending() == 1


def test_the_trail_has_no_index_for_prefix_searches(db, postgres):
    """Sealing a row adds an entry to every index of the trail (its seal fields are indexed, so
    the update is never HOT), so each index must serve a query. Nothing searches the trail by
    prefix (the admin's search is exact), and Django's varchar_pattern_ops twins of indexed
    columns cost the sealer five of its seventeen index entries a row (bench/notes.md)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            [AuditEvent._meta.db_table, "%pattern_ops%"],
        )
        assert cursor.fetchall() == []
