"""RFC 9457 problem details: the one registry of problem types, and the one renderer every
rejection in Tollgate goes through.

Every problem type is registered once, with its slug, title, status and the headers it always
carries (computed from settings when answering, never frozen at import): the generic ones
below, each app's in its errors.py (a ProblemError subclass registers its own, and an app's
plain ProblemType constants sit next to them). Views, DRF and Django's own error handlers (404,
405, 413, 500) all answer `application/problem+json` with a stable `type` URI per kind of
problem, documented in docs/errors.md (tests/config/test_problem_types_documented.py compares
the two).
"""

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from rest_framework import exceptions as drf_exceptions
from rest_framework.request import Request
from rest_framework.views import exception_handler as drf_default_handler

from config import context

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://tollgate.dev/problems/"

# Django's request, DRF's (which wraps it), or none (DRF's handler without one in its context).
AnyRequest = HttpRequest | Request | None


@dataclass(frozen=True)
class ProblemType:
    slug: str
    title: str
    # None: the status of whatever error it stands for (only `error`, the fallback).
    status: int | None
    # Headers every answer of this type carries, computed when answering (from settings).
    headers: Callable[[], dict[str, str]] | None = field(default=None, compare=False)
    module: str = field(default="", compare=False)  # where it was registered

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def response_headers(self) -> dict[str, str]:
        return dict(self.headers()) if self.headers is not None else {}


PROBLEM_TYPES: dict[str, ProblemType] = {}


def problem_type(
    slug: str,
    title: str,
    status: int | None,
    *,
    headers: Callable[[], dict[str, str]] | None = None,
    module: str | None = None,
) -> ProblemType:
    """Register a problem type, or return the registered one if it is the same slug, title and
    status; a slug registered twice differently refuses to load."""
    if module is None:
        module = sys._getframe(1).f_globals.get("__name__", "")  # the registering module
    new = ProblemType(slug, title, status, headers, module)
    known = PROBLEM_TYPES.setdefault(slug, new)
    if known != new or (headers is not None and known.headers is not headers):
        raise ImproperlyConfigured(
            f"Problem type {slug!r} is registered twice, differently "
            f"({known.title!r} {known.status} in {known.module}, {title!r} {status} in {module})."
        )
    return known


# Generic problem types: Django's and DRF's statuses, and the project-wide answers.
BAD_REQUEST = problem_type("bad-request", "Bad request", 400)
INVALID_REQUEST = problem_type("invalid-request", "Invalid request", 400)
NOT_AUTHENTICATED = problem_type("not-authenticated", "Authentication required", 401)
FORBIDDEN = problem_type("forbidden", "Forbidden", 403)
NOT_FOUND = problem_type("not-found", "Not found", 404)
METHOD_NOT_ALLOWED = problem_type("method-not-allowed", "Method not allowed", 405)
NOT_ACCEPTABLE = problem_type("not-acceptable", "Not acceptable", 406)
CONFLICT = problem_type("conflict", "Conflict", 409)
PAYLOAD_TOO_LARGE = problem_type("payload-too-large", "Payload too large", 413)
UNSUPPORTED_MEDIA_TYPE = problem_type("unsupported-media-type", "Unsupported media type", 415)
UNPROCESSABLE_CONTENT = problem_type("unprocessable-content", "Unprocessable content", 422)
THROTTLED = problem_type("throttled", "Too many requests", 429)
INTERNAL_ERROR = problem_type("internal-error", "Internal server error", 500)
# The database unreachable for a moment (restart, failover): callers retry shortly.
DATABASE_RETRY_AFTER_SECONDS = 5
SERVICE_UNAVAILABLE = problem_type(
    "service-unavailable",
    "Service temporarily unavailable",
    503,
    headers=lambda: {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
)
METRICS_TOKEN_REQUIRED = problem_type(
    "metrics-token-required",
    "Metrics token required",
    401,
    headers=lambda: {"WWW-Authenticate": 'Bearer realm="metrics"'},
)
# DRF's answer for a status no other type names.
ERROR = problem_type("error", "Error", None)


class ProblemError(Exception):
    """Base of every app error that is answered as problem+json.

    A subclass that sets its own `slug` registers its problem type (with its title and status)
    when it is defined; `problem` is that registration.
    """

    slug = INTERNAL_ERROR.slug
    title = INTERNAL_ERROR.title
    status = INTERNAL_ERROR.status
    problem: ProblemType = INTERNAL_ERROR

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "slug" in cls.__dict__:
            cls.problem = problem_type(cls.slug, cls.title, cls.status, module=cls.__module__)

    def __init__(self, detail: str | None = None, **extensions: object) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug


def problem_response(
    request: AnyRequest,
    problem: ProblemType,
    *,
    detail: str = "",
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: object,
) -> HttpResponse:
    """The problem+json answer of one registered type; `status` only for the `error` type,
    `headers` for what varies per answer (merged over the type's own)."""
    status = problem.status or status or 500
    body = {
        "type": problem.type_uri,
        "title": problem.title,
        "status": status,
        "detail": detail or problem.title,
        "instance": request.path if request is not None else None,
        "request_id": getattr(request, "request_id", None) or context.current_request_id(),
    }
    body.update({key: value for key, value in extensions.items() if value is not None})
    response = HttpResponse(
        json.dumps(body),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers={**problem.response_headers(), **(headers or {})},
    )
    return response


def render_problem(request: AnyRequest, error: ProblemError) -> HttpResponse:
    return problem_response(
        request,
        error.problem,
        detail=error.detail,
        # Members of the body (approval_request, ...), never named `status` or `headers`; mypy
        # cannot know a dict's keys, so it fears they might be.
        **error.extensions,  # type: ignore[arg-type]
    )


# Django's error views: configured as handler400/403/404/500 in config/urls.py.
def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        return payload_too_large(request)
    return problem_response(request, BAD_REQUEST)


def payload_too_large(request: HttpRequest) -> HttpResponse:
    return problem_response(
        request,
        PAYLOAD_TOO_LARGE,
        detail="The request body is larger than the 1 MiB this endpoint accepts.",
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(request, FORBIDDEN)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(request, NOT_FOUND, detail="No resource here.")


def server_error(request: HttpRequest) -> HttpResponse:
    return problem_response(request, INTERNAL_ERROR)


_DRF_PROBLEMS = {
    problem.status: problem
    for problem in (
        INVALID_REQUEST,
        NOT_AUTHENTICATED,
        FORBIDDEN,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        NOT_ACCEPTABLE,
        CONFLICT,
        PAYLOAD_TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
        UNPROCESSABLE_CONTENT,
        THROTTLED,
    )
}


def drf_exception_handler(exc: Exception, ctx: dict[str, Any]) -> HttpResponse | None:
    """DRF's EXCEPTION_HANDLER: the same problem+json shape for API errors."""
    request = ctx.get("request")
    if isinstance(exc, ProblemError):
        return render_problem(request, exc)
    response = drf_default_handler(exc, ctx)
    if response is None:
        return None
    problem = _DRF_PROBLEMS.get(response.status_code, ERROR)
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
        problem,
        status=response.status_code,
        detail=str(detail),
        errors=errors,
        headers=headers,
    )


# Bare error responses produced below the views (Django's 405 for a wrong method, an empty
# 404 from a view) get the problem shape too. HTML pages (the admin) are left alone.
_BARE_PROBLEMS = {
    problem.status: problem
    for problem in (
        BAD_REQUEST,
        FORBIDDEN,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        PAYLOAD_TOO_LARGE,
        INTERNAL_ERROR,
    )
}


class ProblemDetailsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # The database being unreachable (restart, failover) is not our bug: say so with a 503
        # and Retry-After, so that Stripe and other callers retry, and nothing is lost.
        if isinstance(exception, OperationalError | InterfaceError):
            return problem_response(
                request,
                SERVICE_UNAVAILABLE,
                detail="The database is unreachable for a moment. Retry later.",
            )
        return None

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        # Streaming responses (no `content` to inspect) are left alone: every other response
        # Django makes is an HttpResponse.
        if response.status_code in _BARE_PROBLEMS and isinstance(response, HttpResponse):
            content_type = response.get("Content-Type", "")
            if not content_type.startswith(PROBLEM_CONTENT_TYPE) and not response.content:
                problem = _BARE_PROBLEMS[response.status_code]
                headers = {"Allow": response["Allow"]} if response.has_header("Allow") else None
                return problem_response(request, problem, headers=headers)
        return response
