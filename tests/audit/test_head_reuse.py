"""Rows of one transaction chain from the head it already holds; rollbacks never fork the chain.

Committed for real (no test transaction around them), as Celery tasks and web requests commit.
"""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent, ChainHead
from audit.services import audit_event_record
from audit.verification import chain_verify
from config.context import Actor
from tests.services import require_postgres


@pytest.fixture
def committed(transactional_db):
    """Really committed; tests/conftest.py clears the audit rows afterwards."""
    require_postgres(connection)


def record(n: int) -> AuditEvent:
    return audit_event_record(
        action="entitlements.grant.created", actor=Actor(kind="system"), meta={"count": n}
    )


def verbs(queries) -> list[str]:
    return [q["sql"].split()[0] for q in queries]


def test_one_transaction_reads_the_head_once(committed):
    with transaction.atomic():
        first = record(1)
        with CaptureQueriesContext(connection) as queries:
            second, third = record(2), record(3)
    # No head read after the first row: one compare-and-set UPDATE and the INSERT each.
    assert verbs(queries) == ["UPDATE", "INSERT", "UPDATE", "INSERT"]
    assert [first.sequence + 1, first.sequence + 2] == [second.sequence, third.sequence]
    assert first.occurred_at == second.occurred_at == third.occurred_at
    assert chain_verify().ok


def test_each_transaction_locks_the_head_and_reads_the_clock_again(committed):
    first = record(1)
    with CaptureQueriesContext(connection) as queries:
        second = record(2)
    assert verbs(queries) == ["BEGIN", "SELECT", "UPDATE", "INSERT", "COMMIT"]
    assert "FOR UPDATE" in queries[1]["sql"]
    assert second.occurred_at > first.occurred_at
    assert chain_verify().ok


def test_a_rolled_back_savepoint_leaves_no_gap(committed):
    with transaction.atomic():
        kept = record(1)
        try:
            with transaction.atomic():
                record(2)
                raise RuntimeError("undo the savepoint")
        except RuntimeError:
            pass
        after = record(3)
    assert after.sequence == kept.sequence + 1
    assert after.prev_hash == kept.hash
    assert ChainHead.objects.get().sequence == after.sequence
    assert chain_verify().ok


def test_a_rolled_back_transaction_leaves_no_gap(committed):
    kept = record(1)
    with pytest.raises(RuntimeError), transaction.atomic():
        record(2)
        record(3)
        raise RuntimeError("undo the transaction")
    after = record(4)
    assert after.sequence == kept.sequence + 1
    assert after.prev_hash == kept.hash
    assert list(AuditEvent.objects.values_list("sequence", flat=True).order_by("sequence")) == [
        kept.sequence,
        after.sequence,
    ]
    assert chain_verify().ok
