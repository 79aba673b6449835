"""The admin site staff use: a verified second factor in this session, or no admin at all."""

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import URLPattern, URLResolver, path, reverse

# dj-stripe's "sync from Stripe" confirmation is wrapped in admin_view only: without a guard,
# any verified staff member (Finance, Support) could make it call Stripe and rewrite the mirror.
STRIPE_SYNC_URL_NAME = "djstripe_custom_action"


def second_factor_pending(request: HttpRequest) -> bool:
    """Signed in as active staff, but no second factor verified in this session yet."""
    user = request.user
    return (
        settings.ADMIN_REQUIRE_2FA
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        # Right after django.contrib.auth.login, request.user is the bare user that
        # django-otp's middleware has not decorated: unverified.
        and not getattr(user, "is_verified", lambda: False)()
    )


class StaffAdminSite(admin.AdminSite):
    site_header = "Tollgate administration"
    site_title = "Tollgate"
    index_title = "Billing, entitlements and audit"

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        # django-otp's OTPMiddleware gives request.user is_verified(); the stubs cannot know.
        return not settings.ADMIN_REQUIRE_2FA or request.user.is_verified()  # type: ignore[union-attr]

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Password accepted but no second factor yet: straight to the code (or enrolment).
        if second_factor_pending(request):
            return self.second_factor_redirect(request)
        response = super().login(request, extra_context)
        if request.method == "POST" and second_factor_pending(request):
            return self.second_factor_redirect(request)
        return response

    def second_factor_redirect(self, request: HttpRequest) -> HttpResponseRedirect:
        target = request.GET.get("next") or request.POST.get("next") or reverse("admin:index")
        return HttpResponseRedirect(
            reverse("admin:staff-2fa-verify") + "?" + urlencode({"next": target})
        )

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from staff import views

        urls: list[URLResolver | URLPattern] = [
            path("2fa/verify/", views.second_factor_verify, name="staff-2fa-verify"),
            path("2fa/enroll/", views.second_factor_enroll, name="staff-2fa-enroll"),
            *super().get_urls(),
        ]
        _guard_stripe_sync(urls, self)
        return urls


def _superuser_post_only(
    view: Callable[..., HttpResponseBase], site: admin.AdminSite
) -> Callable[..., HttpResponseBase]:
    """Staff admitted to the admin but not superusers get 403; the page is only ever POSTed to
    by the changelist's action form (a GET crashes inside dj-stripe), so GET answers 405.
    Anyone not admitted yet is left to admin_view (login, second factor)."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        if site.has_permission(request):
            if not request.user.is_superuser:
                raise PermissionDenied
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
        return view(request, *args, **kwargs)

    return guarded


def _guard_stripe_sync(patterns: Iterable[URLResolver | URLPattern], site: admin.AdminSite) -> None:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _guard_stripe_sync(pattern.url_patterns, site)
        elif pattern.name == STRIPE_SYNC_URL_NAME:
            pattern.callback = _superuser_post_only(pattern.callback, site)
