"""Feature checks for the product's code: has_feature, a DRF permission, a view decorator.

A user's active features are cached as {lookup_key: expiry} twice: on the user object for the
rest of the request, and in the Django cache (Redis) under a per-user version that every change
replaces on commit. Expiry times are cached rather than booleans, so an entitlement stops
working at its expires_at even while the cache still holds it. Any number of checks in one
request costs at most one database query.
"""

import functools
import uuid
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from config.problems import NOT_AUTHENTICATED, problem_response
from entitlements import selectors
from entitlements.errors import FEATURE_REQUIRED

_MEMO_ATTRIBUTE = "_tollgate_entitlements"

# Who a check is about: a request's user, signed in or not, or no one.
AnyUser = AbstractBaseUser | AnonymousUser | None
ViewFunction = Callable[..., HttpResponse]


def _version_key(user_id: int) -> str:
    return f"entitlements:version:{user_id}"


def _version(user_id: int) -> str:
    key = _version_key(user_id)
    version: str | None = cache.get(key)
    if version is None:
        # add() so that two readers racing on a cold cache agree on one version.
        cache.add(key, uuid.uuid4().hex, timeout=None)
        version = cache.get(key) or "uncached"
    return version


def invalidate(user_id: int) -> None:
    """A new version: entries cached under the old one are never read again."""
    cache.set(_version_key(user_id), uuid.uuid4().hex, timeout=None)


def forget_request_memo(user: AnyUser) -> None:
    if user is not None and hasattr(user, "__dict__"):
        user.__dict__.pop(_MEMO_ATTRIBUTE, None)


def active_features(user: AnyUser) -> dict[str, float | None]:
    """{lookup_key: expiry as unix seconds, None for no expiry} of the user's live grants."""
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    memo: dict[str, float | None] | None = getattr(user, _MEMO_ATTRIBUTE, None)
    if memo is not None:
        return memo
    # Signed in (checked above), so a saved user with an integer pk, never AnonymousUser's None.
    user_id: int = user.pk  # type: ignore[assignment]
    version = _version(user_id)
    data_key = f"entitlements:features:{user_id}:{version}"
    features: dict[str, float | None] | None = cache.get(data_key)
    if features is None:
        features = selectors.feature_expiries(user_id=user_id, now=timezone.now())
        if version != "uncached":
            cache.set(data_key, features, timeout=settings.ENTITLEMENTS_CACHE_SECONDS)
    setattr(user, _MEMO_ATTRIBUTE, features)
    return features


def has_feature(user: AnyUser, lookup_key: str, *, now: datetime | None = None) -> bool:
    """Whether the user may use the feature right now."""
    features = active_features(user)
    if lookup_key not in features:
        return False
    expiry = features[lookup_key]
    return expiry is None or expiry > (now or timezone.now()).timestamp()


def feature_permission(lookup_key: str) -> type[BasePermission]:
    """A DRF permission class: `permission_classes = [feature_permission("signals_premium")]`."""

    class HasFeature(BasePermission):
        message = f"This needs the {lookup_key} feature."

        def has_permission(self, request: Request, view: APIView) -> bool:
            return has_feature(request.user, lookup_key)

    HasFeature.__name__ = f"HasFeature_{lookup_key}"
    return HasFeature


def feature_required(lookup_key: str) -> Callable[[ViewFunction], ViewFunction]:
    """Decorator for plain Django views: 401 when signed out, 403 without the feature."""

    def decorator(view: ViewFunction) -> ViewFunction:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if not request.user.is_authenticated:
                return problem_response(request, NOT_AUTHENTICATED)
            if not has_feature(request.user, lookup_key):
                return problem_response(
                    request,
                    FEATURE_REQUIRED,
                    detail=f"This needs the {lookup_key} feature.",
                    feature=lookup_key,
                )
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
