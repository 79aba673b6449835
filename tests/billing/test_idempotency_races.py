"""Idempotency-Key under real concurrency on PostgreSQL: twins of a failing request never 500.

When the first request with a key fails, its record is deleted (the key is released). A twin
that lost the insert race reads the record a moment later and may find it gone.
"""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.billing.test_idempotency import EchoView
from tests.servers import require_postgres

pytestmark = [
    pytest.mark.urls("tests.billing.test_idempotency"),
    pytest.mark.django_db(transaction=True),
]
TWINS = 20


def _post(user, body: dict, key: str, start: threading.Barrier):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    start.wait()
    try:
        return client.post(
            "/things/", json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
        )
    finally:
        connections.close_all()


def _storm(user, body: dict, key: str):
    start = threading.Barrier(TWINS)
    with ThreadPoolExecutor(max_workers=TWINS) as pool:
        futures = [pool.submit(_post, user, body, key, start) for _ in range(TWINS)]
        return [future.result() for future in futures]


@pytest.fixture
def user(django_user_model):
    require_postgres(connection)
    return django_user_model.objects.create_user("twin")


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.dictionaries(st.text(max_size=8), st.integers(), max_size=3), round_=st.uuids())
def test_twenty_twins_of_a_failing_request_never_get_a_server_error(user, body, round_):
    EchoView.runs, EchoView.fail_with = [], 500
    responses = _storm(user, body, key=f"storm-{round_}")
    failed_runs = [r for r in responses if r.status_code == 500]
    # Every 500 is the handler's own answer (one per run), never a crash of the key handling.
    assert all(r.json() == {"error": "boom"} for r in failed_runs), [r.content for r in failed_runs]
    assert len(failed_runs) == len(EchoView.runs) >= 1
    others = [r for r in responses if r.status_code != 500]
    assert all(r.status_code == 409 for r in others), [r.content for r in others]
    assert all(r.json()["type"].endswith("/idempotency-key-in-progress") for r in others)
