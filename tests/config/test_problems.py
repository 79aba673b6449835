"""Errors below the views are problem+json too (RFC 9457)."""

import pytest
from django.urls import path

pytestmark = pytest.mark.django_db


def test_unknown_url_is_problem_json(client):
    response = client.get("/nothing-here", HTTP_X_REQUEST_ID="rid-1")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/not-found")
    assert body["status"] == 404
    assert body["instance"] == "/nothing-here"
    assert body["request_id"] == "rid-1"


def test_wrong_method_is_problem_json_with_allow(client):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/method-not-allowed")
    assert "GET" in response["Allow"]


def database_down_view(request):
    # What any view raises when PostgreSQL restarts under it: psycopg's error, wrapped by Django.
    from django.db import OperationalError

    raise OperationalError("connection to server failed: Connection refused")


urlpatterns = [path("db-down", database_down_view)]


@pytest.mark.urls("tests.config.test_problems")
def test_database_outage_is_503_problem_with_retry_after(client):
    response = client.get("/db-down")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    assert response.json()["type"].endswith("/service-unavailable")
