"""Liveness, readiness and metrics endpoints."""

import pytest
from django.db import connection

from tests.servers import require_postgres

pytestmark = pytest.mark.django_db


def test_healthz_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_names_each_dependency(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body["checks"]) == {"database", "cache", "broker"}
    assert body["failing"] == []


def test_readyz_names_redis_when_it_is_really_down(client, redis_server):
    require_postgres(connection, needs_redis=True)
    redis_server.stop()
    try:
        down = client.get("/readyz")
        assert down.status_code == 503
        assert "cache" in down.json()["failing"]
        assert down.json()["checks"]["cache"]["status"] == "down"
    finally:
        redis_server.start()
    up = client.get("/readyz")
    assert up.status_code == 200, up.content


@pytest.fixture
def broker_for_real(settings):
    """Tasks published to Redis, as in production (make test runs them eagerly otherwise).
    Celery reads its CELERY_* settings from Django's: an override there wins in every Celery
    version (setting app.conf.task_always_eager does not in Celery 5.6)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False


def test_readyz_checks_the_broker_and_names_it_when_redis_is_down(
    client, redis_server, broker_for_real
):
    require_postgres(connection, needs_redis=True)
    up = client.get("/readyz")
    assert up.status_code == 200, up.content
    assert up.json()["checks"]["broker"] == {"status": "ok"}
    redis_server.stop()
    try:
        down = client.get("/readyz")
    finally:
        redis_server.start()
    assert down.status_code == 503
    body = down.json()
    assert (body["status"], body["failing"]) == ("unavailable", ["cache", "broker"])
    assert body["checks"]["broker"]["status"] == "down"
    assert body["checks"]["database"] == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_metrics_include_database_and_cache_instrumentation(client):
    client.get("/readyz")
    body = client.get("/metrics").content.decode()
    assert "django_http_requests_total_by_method_total" in body
    assert "django_db_execute_total" in body
    assert "django_cache_get_total" in body
