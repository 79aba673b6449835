"""RFC 9457 problem details: the one renderer every rejection in Tollgate goes through.

Apps raise subclasses of ProblemError (from their errors.py); views, DRF and Django's own
error handlers (404, 405, 413, 500) all answer `application/problem+json` with a stable `type`
URI per kind of problem, documented in docs/errors.md.
"""

import json

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.views import exception_handler as drf_default_handler

from config import context

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://tollgate.dev/problems/"


class ProblemError(Exception):
    """Base of every app error that is answered as problem+json."""

    slug = "internal-error"
    title = "Internal server error"
    status = 500

    def __init__(self, detail: str | None = None, **extensions):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug


def problem_response(
    request, *, slug: str, title: str, status: int, detail: str = "", headers=None, **extensions
) -> HttpResponse:
    body = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail or title,
        "instance": request.path if request is not None else None,
        "request_id": getattr(request, "request_id", None) or context.current_request_id(),
    }
    body.update({key: value for key, value in extensions.items() if value is not None})
    response = HttpResponse(
        json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers
    )
    return response


def render_problem(request, error: ProblemError) -> HttpResponse:
    return problem_response(
        request,
        slug=error.slug,
        title=error.title,
        status=error.status,
        detail=error.detail,
        **error.extensions,
    )


# Django's error views: configured as handler400/403/404/500 in config/urls.py.
def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return payload_too_large(request)
    return problem_response(request, slug="bad-request", title="Bad request", status=400)


def payload_too_large(request):
    return problem_response(
        request,
        slug="payload-too-large",
        title="Payload too large",
        status=413,
        detail="The request body is larger than the 1 MiB this endpoint accepts.",
    )


def permission_denied(request, exception=None):
    return problem_response(request, slug="forbidden", title="Forbidden", status=403)


def not_found(request, exception=None):
    return problem_response(
        request, slug="not-found", title="Not found", status=404, detail="No resource here."
    )


def server_error(request):
    return problem_response(
        request, slug="internal-error", title="Internal server error", status=500
    )


_DRF_SLUGS = {
    400: ("invalid-request", "Invalid request"),
    401: ("not-authenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("unprocessable-content", "Unprocessable content"),
    429: ("throttled", "Too many requests"),
}


def drf_exception_handler(exc, ctx):
    """DRF's EXCEPTION_HANDLER: the same problem+json shape for API errors."""
    request = ctx.get("request")
    if isinstance(exc, ProblemError):
        return render_problem(request, exc)
    response = drf_default_handler(exc, ctx)
    if response is None:
        return None
    slug, title = _DRF_SLUGS.get(response.status_code, ("error", "Error"))
    detail = response.data
    errors = None
    if isinstance(exc, drf_exceptions.ValidationError):
        errors, detail = response.data, "The request body did not validate."
    elif isinstance(detail, dict) and "detail" in detail:
        detail = str(detail["detail"])
    passed_on = ("WWW-Authenticate", "Retry-After", "Allow")
    headers = {key: value for key, value in response.items() if key in passed_on}
    return problem_response(
        request,
        slug=slug,
        title=title,
        status=response.status_code,
        detail=str(detail),
        errors=errors,
        headers=headers,
    )


# Bare error responses produced below the views (Django's 405 for a wrong method, an empty
# 404 from a view) get the problem shape too. HTML pages (the admin) are left alone.
_BARE_STATUS = {
    400: ("bad-request", "Bad request"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Payload too large"),
    500: ("internal-error", "Internal server error"),
}


class ProblemDetailsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def process_exception(self, request, exception):
        # The database being unreachable (restart, failover) is not our bug: say so with a 503
        # and Retry-After, so that Stripe and other callers retry, and nothing is lost.
        if isinstance(exception, OperationalError | InterfaceError):
            return problem_response(
                request,
                slug="service-unavailable",
                title="Service temporarily unavailable",
                status=503,
                detail="The database is unreachable for a moment. Retry later.",
                headers={"Retry-After": "5"},
            )
        return None

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code in _BARE_STATUS and not getattr(response, "streaming", False):
            content_type = response.get("Content-Type", "")
            if not content_type.startswith(PROBLEM_CONTENT_TYPE) and not response.content:
                slug, title = _BARE_STATUS[response.status_code]
                headers = {"Allow": response["Allow"]} if response.has_header("Allow") else None
                return problem_response(
                    request, slug=slug, title=title, status=response.status_code, headers=headers
                )
        return response
