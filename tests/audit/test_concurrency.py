"""Parallel writers on separate connections queue on the chain-head lock: no fork, no gap."""

import threading

import pytest
from django.db import connection, connections

from audit.models import AuditEvent, ChainHead
from audit.services import audit_event_record
from audit.verification import chain_verify
from config.context import Actor
from tests.services import clear_audit_tables, require_postgres

THREADS = 6
PER_THREAD = 25


@pytest.fixture
def committed_trail(django_db_setup, django_db_blocker):
    """Rows really committed by other connections, cleared afterwards the way a DBA would:
    one transaction that switches the triggers off, deletes, and switches them on again."""
    with django_db_blocker.unblock():
        require_postgres(connection)
        yield
        clear_audit_tables()


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
