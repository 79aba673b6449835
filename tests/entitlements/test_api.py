"""The entitlements API: the caller's features, support's grant and revoke, permission
boundaries, Idempotency-Key and the OpenAPI schema."""

import base64
import json

import pytest
from django.urls import reverse

from billing.idempotency import request_fingerprint
from billing.models import IdempotencyRecord
from entitlements.models import Entitlement

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-test-password-42"


def basic(user) -> dict:
    token = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Basic auth checks a password on every request; the production hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def support(make_user, support_user):
    support_user.set_password(PASSWORD)
    support_user.save()
    return support_user


@pytest.fixture
def finance(finance_user):
    finance_user.set_password(PASSWORD)
    finance_user.save()
    return finance_user


def post(client, name, body, user, **headers):
    return client.post(
        reverse(name), data=json.dumps(body), content_type="application/json",
        **basic(user), **headers,
    )  # fmt: skip


def test_list_returns_the_callers_active_features(client, make_user, support):
    trader = make_user(password=PASSWORD)
    post(client, "entitlements-grant",
         {"user": trader.username, "plan": "premium", "reason": "trial"}, support)  # fmt: skip
    response = client.get(reverse("entitlements-list"), **basic(trader))
    assert response.status_code == 200
    features = {item["feature"]: item for item in response.json()["entitlements"]}
    assert set(features) == {"signals_basic", "signals_premium", "advanced_analytics"}
    assert features["signals_basic"]["source"] == "manual"
    assert features["signals_basic"]["expires_at"] is None
    # Another user's grants are not listed.
    assert client.get(reverse("entitlements-list"), **basic(support)).json() == {"entitlements": []}


def test_anonymous_gets_403_forbidden_problem_json(client):
    # What the API answers today without credentials: DRF's 403, no WWW-Authenticate challenge
    # (the first authentication class is the session). A 401 would be a deliberate change.
    for name, method in [("entitlements-list", client.get), ("entitlements-grant", client.post)]:
        response = method(reverse(name))
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["type"].endswith("/forbidden")
        assert response.json()["detail"] == "Authentication credentials were not provided."
        assert not response.has_header("WWW-Authenticate")


def test_support_grants_and_revokes_with_actor_and_reason(client, make_user, support, sent):
    trader = make_user()
    response = post(client, "entitlements-grant", {"user": trader.email,
                    "feature": "copy_trading", "reason": "ticket 12"}, support)  # fmt: skip
    assert response.status_code == 201
    row = Entitlement.objects.get(user=trader)
    assert (row.feature.lookup_key, row.source, row.granted_by, row.reason) == (
        "copy_trading", "manual", support, "ticket 12",
    )  # fmt: skip
    granted = next(kwargs for name, kwargs in sent if name == "granted")
    assert (granted["actor"].kind, granted["actor"].user_id) == ("user", support.pk)
    response = post(client, "entitlements-revoke", {"user": trader.username,
                    "feature": "copy_trading", "reason": "chargeback"}, support)  # fmt: skip
    assert response.status_code == 200
    row.refresh_from_db()
    assert (row.revoked_by, row.revoke_reason) == (support, "chargeback")
    assert row.revoked_at is not None


def test_finance_may_view_but_not_grant_or_revoke(client, make_user, finance):
    trader = make_user()
    for name in ("entitlements-grant", "entitlements-revoke"):
        response = post(client, name, {"user": trader.username, "feature": "copy_trading",
                        "reason": "no"}, finance)  # fmt: skip
        assert response.status_code == 403
        assert response.json()["type"].endswith("/forbidden")
    assert not Entitlement.objects.exists()
    assert client.get(reverse("entitlements-list"), **basic(finance)).status_code == 200


def test_invalid_requests_are_refused_with_problem_types(client, make_user, support):
    trader = make_user()
    no_reason = {"user": trader.username, "feature": "copy_trading"}
    missing_reason = post(client, "entitlements-grant", no_reason, support)
    assert missing_reason.status_code == 400
    assert "reason" in missing_reason.json()["errors"]
    unknown = post(client, "entitlements-grant", {"user": trader.username, "feature": "gold",
                   "reason": "x"}, support)  # fmt: skip
    assert unknown.status_code == 422 and unknown.json()["type"].endswith("/unknown-feature")
    nobody = post(client, "entitlements-grant", {"user": "ghost", "feature": "copy_trading",
                  "reason": "x"}, support)  # fmt: skip
    assert nobody.json()["type"].endswith("/unknown-user")
    nothing = post(client, "entitlements-revoke", {"user": trader.username, "all_manual": True,
                   "reason": "x"}, support)  # fmt: skip
    assert nothing.status_code == 409
    assert not Entitlement.objects.exists()


def test_idempotency_key_replays_refuses_other_body_and_in_progress(client, make_user, support):
    trader = make_user()
    body = {"user": trader.username, "feature": "vip_support", "reason": "ticket 7"}
    first = post(client, "entitlements-grant", body, support, HTTP_IDEMPOTENCY_KEY="k-1")
    again = post(client, "entitlements-grant", body, support, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Entitlement.objects.filter(user=trader).count() == 1
    other = post(client, "entitlements-grant", {**body, "reason": "other"}, support,
                 HTTP_IDEMPOTENCY_KEY="k-1")  # fmt: skip
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")

    # A first request with this key is still running: its record exists, not completed.
    revoke = {"user": trader.username, "feature": "vip_support", "reason": "done"}
    from django.test import RequestFactory

    twin = RequestFactory().post(reverse("entitlements-revoke"), data=json.dumps(revoke),
                                 content_type="application/json")  # fmt: skip
    IdempotencyRecord.objects.create(
        user=support, key="k-2", operation="entitlement_revoke",
        fingerprint=request_fingerprint(twin),
    )  # fmt: skip
    busy = post(client, "entitlements-revoke", revoke, support, HTTP_IDEMPOTENCY_KEY="k-2")
    assert busy.status_code == 409
    assert Entitlement.objects.get(user=trader).revoked_at is None


def test_openapi_schema_lists_the_endpoints(admin_client):
    response = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    for path in ("/api/entitlements/", "/api/entitlements/grant/", "/api/entitlements/revoke/"):
        assert path in text
    assert "Idempotency-Key" in text


@pytest.mark.parametrize("expires_at", ["2020-01-01T00:00:00Z", "now"])
def test_a_grant_expiring_now_or_in_the_past_is_invalid_expiry(
    client, make_user, support, expires_at
):
    from django.utils import timezone

    trader = make_user()
    if expires_at == "now":
        expires_at = timezone.now().isoformat()  # past by the time the service compares
    body = {"user": trader.username, "feature": "copy_trading", "expires_at": expires_at}
    response = post(client, "entitlements-grant", {**body, "reason": "t"}, support)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://tollgate.dev/problems/invalid-expiry"
    assert problem["title"] == "The expiry must be in the future"
    assert not Entitlement.objects.filter(user=trader).exists()
