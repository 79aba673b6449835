"""Parallel writers on separate connections queue on the chain-head lock: no fork, no gap."""

import threading

import pytest
from django.db import connection, connections

from audit.models import AuditEvent, ChainHead
from audit.services import audit_event_record
from audit.verification import chain_verify
from config.context import Actor
from tests.services import require_postgres

THREADS = 6
PER_THREAD = 25


@pytest.fixture
def committed_trail(transactional_db):
    """Rows really committed by other connections; tests/conftest.py clears them afterwards the
    way a DBA would (one transaction that switches the triggers off, deletes, switches them on)."""
    require_postgres(connection)


def test_concurrent_writers_never_fork_the_chain(committed_trail):
    start = threading.Barrier(THREADS)
    errors = []

    def writer(n):
        try:
            start.wait()
            for i in range(PER_THREAD):
                audit_event_record(
                    action="entitlements.grant.created",
                    actor=Actor(kind="system"),
                    meta={"count": i, "user_id": n},
                )
        except Exception as error:  # surfaced below; a thread cannot fail the test itself
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, THREADS * PER_THREAD + 1))
    assert ChainHead.objects.get().sequence == THREADS * PER_THREAD
    assert len(set(AuditEvent.objects.values_list("prev_hash", flat=True))) == len(sequences)
    assert chain_verify().ok
