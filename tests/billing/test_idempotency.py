"""Idempotency-Key on a DRF view defined here, the way entitlements' endpoints use it."""

import json
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.idempotency import idempotent, register_operation
from billing.models import IdempotencyRecord
from tests.billing.conftest import metric

OPERATION = register_operation("test_echo")


class EchoView(APIView):
    """Counts its runs; can be told to block (to observe a request in progress) or fail."""

    runs: list = []
    gate: threading.Event | None = None
    started = threading.Event()
    fail_with: int | None = None

    @idempotent(operation=OPERATION)
    def post(self, request, pk=None):
        EchoView.runs.append(request.data)
        if EchoView.gate is not None:
            EchoView.started.set()
            EchoView.gate.wait(timeout=10)
        if EchoView.fail_with == 500:
            return Response({"error": "boom"}, status=500)
        if EchoView.fail_with == -1:
            raise RuntimeError("handler crashed")
        return Response({"run": len(EchoView.runs), "echo": request.data}, status=201)


@pytest.fixture(autouse=True)
def _reset_view():
    EchoView.runs, EchoView.gate, EchoView.fail_with = [], None, None
    EchoView.started.clear()
    yield


urlpatterns = [path("things/", EchoView.as_view()), path("things/<int:pk>/", EchoView.as_view())]
pytestmark = pytest.mark.urls(__name__)


def call(user, body, *, key="key-1", path="/things/"):
    client = Client()
    client.force_login(user)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice")


def test_same_key_same_body_replays(user):
    hits = metric("idempotent_hits_total", operation=OPERATION)
    first = call(user, {"a": 1})
    second = call(user, {"a": 1})
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert len(EchoView.runs) == 1
    assert metric("idempotent_hits_total", operation=OPERATION) == hits + 1


def test_same_key_different_body_is_422(user):
    call(user, {"a": 1})
    response = call(user, {"a": 2})
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/idempotency-key-reused")
    assert len(EchoView.runs) == 1


def test_same_key_other_path_is_422(user):
    call(user, {"a": 1}, path="/things/1/")
    assert call(user, {"a": 1}, path="/things/2/").status_code == 422


def test_keys_are_scoped_per_user(user, django_user_model):
    bob = django_user_model.objects.create_user("bob")
    assert call(user, {"a": 1}).json()["run"] == 1
    assert call(bob, {"a": 1}).json()["run"] == 2


def test_without_a_key_every_request_runs(user):
    call(user, {"a": 1}, key=None)
    call(user, {"a": 1}, key=None)
    assert len(EchoView.runs) == 2
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_invalid_key_is_400(user, key):
    response = call(user, {"a": 1}, key=key)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/idempotency-key-invalid")
    assert EchoView.runs == []


@pytest.mark.parametrize("failure", [500, -1])
def test_server_errors_release_the_key(user, failure):
    EchoView.fail_with = failure
    if failure == -1:
        with pytest.raises(RuntimeError):
            call(user, {"a": 1})
    else:
        assert call(user, {"a": 1}).status_code == 500
    EchoView.fail_with = None
    assert call(user, {"a": 1}).status_code == 201
    assert len(EchoView.runs) == 2


@pytest.mark.django_db(transaction=True)
def test_same_key_while_in_progress_is_409(django_user_model):
    user = django_user_model.objects.create_user("carol")
    EchoView.gate = threading.Event()
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", call(user, {"a": 1})))
    first.start()
    try:
        assert EchoView.started.wait(timeout=10)
        concurrent = call(user, {"a": 1})
    finally:
        EchoView.gate.set()
        first.join()
    assert concurrent.status_code == 409
    assert concurrent.json()["type"].endswith("/idempotency-key-in-progress")
    assert results["first"].status_code == 201
    assert call(user, {"a": 1})["Idempotent-Replayed"] == "true"
    assert len(EchoView.runs) == 1


def test_records_are_kept_24_hours_then_purged(user, settings):
    settings.BILLING_IDEMPOTENCY_RETENTION_HOURS = 24
    call(user, {"a": 1}, key="recent")
    call(user, {"a": 1}, key="old")
    IdempotencyRecord.objects.filter(key="recent").update(
        created=timezone.now() - timedelta(hours=23)
    )
    IdempotencyRecord.objects.filter(key="old").update(created=timezone.now() - timedelta(hours=25))
    call_command("purge_idempotency_keys")
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]


def test_operations_are_a_fixed_set():
    with pytest.raises(ValueError, match="Unknown idempotency operation"):
        idempotent(operation="not_registered")
    with pytest.raises(ValueError):
        register_operation("no spaces or {braces}")
