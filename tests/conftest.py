"""Shared fixtures. The suite runs on the real PostgreSQL and Redis that make test starts.

With CI=true a missing PostgreSQL or Redis stops the run with an error: a test that needs them
is never silently skipped there.
"""

import os

import pytest
from django.conf import settings

from tests.audit_trail import clear_audit_tables
from tests.servers import RedisServer


def pytest_configure(config):
    if os.environ.get("CI", "").lower() == "true":
        engine = settings.DATABASES["default"]["ENGINE"]
        problems = []
        if "postgresql" not in engine:
            problems.append(f"DATABASE_URL is not PostgreSQL (engine {engine})")
        if not settings.REDIS_URL:
            problems.append("REDIS_URL is not set")
        if problems:
            raise pytest.UsageError(
                "CI=true needs the real services (run through `make test`): " + "; ".join(problems)
            )


@pytest.fixture
def redis_server():
    """Control of the throwaway Redis server started by .ci/with-services.sh."""
    port = os.environ.get("TOLLGATE_TEST_REDIS_PORT")
    if not port:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("TOLLGATE_TEST_REDIS_PORT is not set: run through `make test`")
        pytest.skip("needs the Redis server started by `make test`")
    server = RedisServer(int(port), os.environ["TOLLGATE_TEST_SERVICES_DIR"])
    yield server
    server.start()  # always leave it running for the next test


@pytest.fixture
def admin_client(client, admin_user):
    """pytest-django's admin_client, signed in through the second factor like real staff."""
    from tests.staff_login import staff_login

    return staff_login(client, admin_user)


def _commits_for_real(item) -> bool:
    """Transactional tests (live servers, worker processes) commit to the test database."""
    marker = item.get_closest_marker("django_db")
    if marker is not None and marker.kwargs.get("transaction"):
        return True
    return bool({"transactional_db", "live_server"} & set(item.fixturenames))


@pytest.fixture(autouse=True)
def _audit_rows_cleared_before_flush(request):
    if not _commits_for_real(request.node):
        yield
        return
    # Set up the transactional database first, so this teardown runs before its flush.
    request.getfixturevalue("transactional_db")
    yield
    clear_audit_tables()


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (Redis or local memory)."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def fake_stripe(settings, monkeypatch):
    """The fake Stripe API (billing/simulator/fake_api.py) with dj-stripe's mirror pointed at
    it; it answers only for what the test hands it (`fake_stripe.record_event(payload)`)."""
    import stripe

    from billing.simulator.fake_api import FakeStripe

    with FakeStripe() as fake:
        monkeypatch.setattr(stripe, "api_base", fake.url)
        # Our Celery retries are the retry policy; the SDK's own sleeps would only slow tests.
        monkeypatch.setattr(stripe, "max_network_retries", 0)
        settings.STRIPE_SECRET_KEY = "sk_test_FakeKey0123456789abcdefXYZ"
        settings.BILLING_STRIPE_MIRROR_ENABLED = True
        settings.BILLING_MIRROR_MAX_RETRIES = 2
        yield fake
