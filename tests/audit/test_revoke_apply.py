"""Issue 14's race, at test scale: a webhook apply and a staff revoke for the same user at the
same moment (bench/revoke_apply.py, 1,000 iterations in `make bench`), committed for real on
two connections: no deadlock, no 503 (OperationalError), no error, and the chain verifies.

The final state is checked too: the revoke should stick whichever commits first. It does not
always: entitlements' reconciliation reads the open blocks before it locks the live rows, so
an apply that read "no block" just before the revoke committed creates a fresh Stripe grant
beside the revoked one. That is entitlements' bug, not the trail's (reported with issue 14's
bench work); the test says so as an expected failure instead of hiding it.
"""

import pytest
from django.db import connection

from audit.sealing import audit_seal_pending
from audit.verification import chain_verify
from bench.revoke_apply import revoke_apply_race
from tests.servers import require_postgres

ITERATIONS = 100


@pytest.fixture
def committed(transactional_db):
    require_postgres(connection)


def test_a_webhook_apply_and_a_staff_revoke_of_one_user_never_deadlock(
    committed, django_user_model
):
    staff = django_user_model.objects.create_superuser("olga", "olga@example.com", "pw")
    result = revoke_apply_race(ITERATIONS, staff=staff)
    assert result.errors == []
    assert (result.deadlocks, result.service_unavailable) == (0, 0)
    assert result.iterations == ITERATIONS
    audit_seal_pending()
    assert chain_verify().ok
    if result.inconsistent:
        pytest.xfail(
            f"{len(result.inconsistent)} of {ITERATIONS} revokes did not stick (entitlements' "
            f"blocks are read before the live rows are locked): {result.inconsistent[0]}"
        )
