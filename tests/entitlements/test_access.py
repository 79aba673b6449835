"""has_feature, the DRF permission and the view decorator: cached per request and in Redis,
invalidated on every change, at most one query however many checks."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from config.context import Actor
from entitlements import services
from entitlements.access import feature_permission, feature_required, has_feature
from entitlements.models import Entitlement

pytestmark = pytest.mark.django_db
SUPPORT = Actor(kind="user", user_id=None)


def grant(user, key, *, expires_at=None):
    return services.entitlement_grant_manual(
        user=user, granted_by=None, actor=SUPPORT, reason="test grant", feature_key=key,
        expires_at=expires_at,
    )  # fmt: skip


def fresh(user):
    """The same user as a new request would load it (no per-request memo)."""
    return type(user).objects.get(pk=user.pk)


def test_any_number_of_checks_costs_at_most_one_query(make_user, django_assert_max_num_queries):
    user = make_user()
    grant(user, "signals_premium")
    user = fresh(user)
    with django_assert_max_num_queries(1):
        results = [has_feature(user, key) for key in ["signals_premium", "copy_trading"] * 50]
    assert results[:2] == [True, False]


def test_second_request_is_served_from_redis_without_a_query(make_user, django_assert_num_queries):
    user = make_user()
    grant(user, "signals_basic")
    assert has_feature(fresh(user), "signals_basic")
    next_request_user = fresh(user)
    with django_assert_num_queries(0):
        assert has_feature(next_request_user, "signals_basic")


def test_a_change_invalidates_the_cache_on_commit(make_user, django_capture_on_commit_callbacks):
    user = make_user()
    assert not has_feature(fresh(user), "vip_support")  # cached: no vip_support
    with django_capture_on_commit_callbacks(execute=True):
        rows = grant(user, "vip_support")
    assert has_feature(fresh(user), "vip_support")
    with django_capture_on_commit_callbacks(execute=True):
        services.entitlement_revoke(entitlement=rows[0], actor=SUPPORT, reason="abuse")
    assert not has_feature(fresh(user), "vip_support")


def test_expiry_takes_effect_while_cached(make_user):
    user = make_user()
    expires_at = timezone.now() + timedelta(hours=1)
    grant(user, "copy_trading", expires_at=expires_at)
    cached = fresh(user)
    assert has_feature(cached, "copy_trading")
    assert not has_feature(cached, "copy_trading", now=expires_at + timedelta(seconds=1))
    assert not has_feature(fresh(user), "copy_trading", now=expires_at)


def test_works_when_redis_is_down(make_user, redis_server):
    user = make_user()
    grant(user, "signals_basic")
    redis_server.stop()
    assert has_feature(fresh(user), "signals_basic")
    assert not has_feature(fresh(user), "copy_trading")


def test_anonymous_has_nothing():
    assert not has_feature(AnonymousUser(), "signals_basic")


class PremiumView(APIView):
    permission_classes = [feature_permission("signals_premium")]

    def get(self, request):
        from rest_framework.response import Response

        return Response({"ok": True})


def test_drf_permission_class(make_user, django_capture_on_commit_callbacks):
    user = make_user()
    factory = APIRequestFactory()
    request = factory.get("/premium")

    force_authenticate(request, user=fresh(user))
    assert PremiumView.as_view()(request).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        grant(user, "signals_premium")
    request = factory.get("/premium")
    force_authenticate(request, user=fresh(user))
    assert PremiumView.as_view()(request).status_code == 200


def test_view_decorator_answers_problem_json(make_user, django_capture_on_commit_callbacks):
    @feature_required("advanced_analytics")
    def analytics(request):
        from django.http import JsonResponse

        return JsonResponse({"ok": True})

    request = RequestFactory().get("/analytics")
    request.user = AnonymousUser()
    assert analytics(request).status_code == 401
    user = make_user()
    request.user = fresh(user)
    denied = analytics(request)
    assert denied.status_code == 403
    assert denied["Content-Type"] == "application/problem+json"
    assert json.loads(denied.content)["type"].endswith("/feature-required")
    with django_capture_on_commit_callbacks(execute=True):
        grant(user, "advanced_analytics")
    request.user = fresh(user)
    assert analytics(request).status_code == 200


def test_revoked_and_expired_rows_do_not_count(make_user):
    user = make_user()
    rows = grant(user, "signals_basic")
    services.entitlement_revoke(entitlement=rows[0], actor=SUPPORT, reason="test")
    assert Entitlement.objects.get(pk=rows[0].pk).revoke_reason == "test"
    assert not has_feature(fresh(user), "signals_basic")
