"""Second-factor pages of the admin: verify a code, or enrol an authenticator."""

from collections.abc import Callable
from typing import Any

import segno
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_otp import devices_for_user, match_token
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.problems import problem_response
from config.requests import AuthenticatedHttpRequest
from staff import forms, metrics, services
from staff.errors import LOGIN_LOCKED_OUT

ADMIN_LOGIN = "admin:login"


def _page(request: HttpRequest, template: str, context: dict[str, object]) -> HttpResponse:
    """Render inside the admin's frame (site header, user links) like any admin page."""
    from django.contrib import admin

    return render(request, template, {**admin.site.each_context(request), **context})


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


def _staff_only(
    view: Callable[[AuthenticatedHttpRequest], HttpResponse],
) -> Callable[[AuthenticatedHttpRequest], HttpResponse]:
    """Signed-in active staff only; anyone else goes back to the admin login."""

    @never_cache
    @csrf_protect
    @login_required(login_url=ADMIN_LOGIN)
    def wrapped(request: AuthenticatedHttpRequest) -> HttpResponse:  # login_required: a User
        if not (request.user.is_active and request.user.is_staff):
            return redirect_to_login(request.get_full_path(), reverse(ADMIN_LOGIN))
        return view(request)

    return wrapped


@_staff_only
def second_factor_verify(request: AuthenticatedHttpRequest) -> HttpResponse:
    # django-otp's OTPMiddleware gives request.user is_verified(); the stubs cannot know.
    if request.user.is_verified():  # type: ignore[attr-defined]
        return HttpResponseRedirect(_next_url(request))
    if not any(devices_for_user(request.user)):
        return HttpResponseRedirect(
            reverse("admin:staff-2fa-enroll") + "?" + request.GET.urlencode()
        )
    form = forms.OneTimeCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(request.user, form.cleaned_data["token"])
        if device is not None:
            otp_login(request, device)
            request.session.cycle_key()
            return HttpResponseRedirect(_next_url(request))
        metrics.second_factor_failures.inc()
        form.add_error("token", "That code is not valid. Try the current one.")
    return _page(
        request,
        "admin/staff/second_factor_verify.html",
        {"form": form, "next": _next_url(request), "title": "Second factor"},
    )


@_staff_only
def second_factor_enroll(request: AuthenticatedHttpRequest) -> HttpResponse:
    if any(devices_for_user(request.user)):
        return HttpResponseRedirect(reverse("admin:staff-2fa-verify"))
    device = services.second_factor_enrollment_start(user=request.user)
    form = forms.OneTimeCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        confirmed = services.second_factor_enrollment_confirm(
            user=request.user, token=form.cleaned_data["token"]
        )
        if confirmed is not None:
            device, backup_codes = confirmed
            otp_login(request, device)
            request.session.cycle_key()
            return _page(
                request,
                "admin/staff/second_factor_backup_codes.html",
                {"codes": backup_codes, "next": _next_url(request), "title": "Backup codes"},
            )
        metrics.second_factor_failures.inc()
        form.add_error("token", "That code is not valid. Check the time on your phone.")
    qr_svg = segno.make(device.config_url, error="m").svg_inline(scale=4)
    return _page(
        request,
        "admin/staff/second_factor_enroll.html",
        {
            "form": form,
            "next": _next_url(request),
            "qr_svg": qr_svg,
            "secret": _base32_secret(device),
            "title": "Set up a second factor",
        },
    )


def _base32_secret(device: TOTPDevice) -> str:
    from base64 import b32encode

    return b32encode(device.bin_key).decode()


def locked_out(
    request: HttpRequest,
    credentials: dict[str, Any] | None = None,
    *args: object,
    **kwargs: object,
) -> HttpResponse:
    """django-axes' lockout answer: problem+json, like every other refusal."""
    return problem_response(
        request,
        LOGIN_LOCKED_OUT,
        detail="Sign-in is locked for this account or address for a while after repeated "
        "failures. Try again later or ask an administrator.",
    )
