"""The entitlements API: the caller's features, support's grant and revoke, permission
boundaries, Idempotency-Key and the OpenAPI schema."""

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from billing.idempotency import request_fingerprint
from billing.models import IdempotencyRecord
from entitlements.models import Entitlement
from staff.api_tokens import api_token_create, api_token_revoke
from staff.models import StaffApiToken
from tests.staff_login import staff_login

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


def bearer(user, *, lifetime=timedelta(days=1)) -> dict:
    _, raw = api_token_create(user=user, name="tests", lifetime=lifetime, now=timezone.now())
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def credentials(user) -> dict:
    # Staff act with a staff API token (their second factor); other users sign in with Basic.
    return bearer(user) if user.is_staff else basic(user)


def post(client, name, body, user=None, **headers):
    auth = credentials(user) if user is not None else {}
    return client.post(
        reverse(name), data=json.dumps(body), content_type="application/json",
        **auth, **headers,
    )  # fmt: skip


def grant_body(user) -> dict:
    return {"user": user.username, "plan": "enterprise", "reason": "ticket 99"}


def assert_refused(response, status: int, slug: str):
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == f"https://tollgate.dev/problems/{slug}"


def test_basic_with_a_support_password_cannot_grant(client, make_user, support):
    trader = make_user()
    response = client.post(
        reverse("entitlements-grant"), data=json.dumps(grant_body(trader)),
        content_type="application/json", **basic(support),
    )  # fmt: skip
    assert_refused(response, 403, "forbidden")
    assert "second factor" in response.json()["detail"]
    assert not Entitlement.objects.exists()


def test_session_waiting_for_its_second_factor_cannot_grant(client, make_user, support):
    trader = make_user()
    client.force_login(support)  # password accepted, no code entered yet
    assert_refused(post(client, "entitlements-grant", grant_body(trader)), 403, "forbidden")
    assert not Entitlement.objects.exists()


def test_verified_session_grants(client, make_user, support):
    trader = make_user()
    staff_login(client, support)
    assert post(client, "entitlements-grant", grant_body(trader)).status_code == 201
    assert Entitlement.objects.filter(user=trader).exists()


def test_valid_token_grants_and_is_audited_without_the_token(client, make_user, support):
    trader = make_user()
    headers = bearer(support)
    raw = headers["HTTP_AUTHORIZATION"].split()[1]
    response = client.post(
        reverse("entitlements-grant"), data=json.dumps(grant_body(trader)),
        content_type="application/json", **headers,
    )  # fmt: skip
    assert response.status_code == 201
    created = AuditEvent.objects.get(action="auth.api_token.created")
    assert raw not in json.dumps(created.meta) + created.target_repr + created.reason
    stored = StaffApiToken.objects.get(user=support)
    assert stored.digest == hashlib.sha256(raw.encode()).hexdigest() and raw not in stored.prefix


@pytest.mark.parametrize(
    ("flag", "status", "slug"),
    [
        # Staff status removed: still authenticated, but refused.
        ("is_staff", 403, "forbidden"),
        # Account disabled: its tokens no longer authenticate at all.
        ("is_active", 401, "not-authenticated"),
    ],
)
def test_offboarded_support_member_cannot_grant(client, make_user, support, flag, status, slug):
    trader = make_user()
    headers = bearer(support)
    setattr(support, flag, False)
    support.save()
    response = client.post(
        reverse("entitlements-grant"), data=json.dumps(grant_body(trader)),
        content_type="application/json", **headers,
    )  # fmt: skip
    assert_refused(response, status, slug)
    assert not Entitlement.objects.exists()


def test_staff_status_removed_refuses_a_verified_session_too(client, make_user, support):
    trader = make_user()
    staff_login(client, support)
    support.is_staff = False
    support.save()
    assert_refused(post(client, "entitlements-grant", grant_body(trader)), 403, "forbidden")


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_revoked_or_expired_token_is_401_and_audited(client, make_user, support, state):
    trader = make_user()
    headers = bearer(support)
    token = StaffApiToken.objects.get(user=support)
    if state == "revoked":
        assert api_token_revoke(token=token, now=timezone.now())
        assert AuditEvent.objects.filter(action="auth.api_token.revoked").count() == 1
    else:
        StaffApiToken.objects.filter(pk=token.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    response = client.post(
        reverse("entitlements-grant"), data=json.dumps(grant_body(trader)),
        content_type="application/json", **headers,
    )  # fmt: skip
    assert_refused(response, 401, "not-authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    refused = AuditEvent.objects.get(action="auth.api_token.refused")
    assert (refused.outcome, refused.reason) == ("failure", state)
    assert refused.actor_id == str(support.pk)
    assert not Entitlement.objects.exists()


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic " + base64.b64encode(b"nobody:wrong").decode(), id="basic-unknown"),
        pytest.param("Bearer tgt_not-a-token", id="bearer-unknown"),
        pytest.param("Bearer", id="bearer-malformed"),
    ],
)
def test_wrong_credentials_are_401_with_a_challenge(client, support, authorization):
    audit_rows = AuditEvent.objects.count()
    response = client.get(reverse("entitlements-list"), HTTP_AUTHORIZATION=authorization)
    assert_refused(response, 401, "not-authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    if authorization.startswith("Bearer"):
        # Anyone can send a made-up token: counted, never stored per request.
        assert AuditEvent.objects.count() == audit_rows


def test_wrong_basic_password_of_a_real_account_is_401(client, support):
    token = base64.b64encode(f"{support.username}:wrong-password".encode()).decode()
    response = client.get(reverse("entitlements-list"), HTTP_AUTHORIZATION=f"Basic {token}")
    assert_refused(response, 401, "not-authenticated")
    assert response.has_header("WWW-Authenticate")


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
    assert client.get(reverse("entitlements-list"), **basic(support)).json() == {
        "entitlements": [],
        "blocks": [],
    }


def test_anonymous_gets_401_with_a_challenge(client):
    # No credentials at all: 401 with the token class's challenge (docs/errors.md).
    for name, method in [("entitlements-list", client.get), ("entitlements-grant", client.post)]:
        response = method(reverse(name))
        assert_refused(response, 401, "not-authenticated")
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'


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
