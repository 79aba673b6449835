"""config/problems.py alone: the problem+json body, Django's and DRF's errors, the middleware.

No database and no server (RequestFactory requests): part of `make mutation`'s test set;
tests/config/test_problems.py covers the same through the full stack.
"""

import json

import pytest
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse, StreamingHttpResponse
from django.test import RequestFactory
from rest_framework import exceptions as drf_exceptions

from config import context, problems

FACTORY = RequestFactory()


def request(path="/x/y"):
    req = FACTORY.get(path)
    req.request_id = "rid-1"
    return req


def body(response) -> dict:
    assert response["Content-Type"] == "application/problem+json"
    return json.loads(response.content)


# Unregistered types: the renderer takes any ProblemType.
S400 = problems.ProblemType("s", "T", 400)
S429 = problems.ProblemType("s", "T", 429)


class Teapot(problems.ProblemError):
    slug = "teapot"
    title = "I am a teapot"
    status = 418


def test_problem_error_defaults_and_type_uri():
    error = problems.ProblemError()
    assert (error.slug, error.title, error.status) == (
        "internal-error",
        "Internal server error",
        500,
    )
    assert error.detail == "Internal server error" == str(error)
    assert error.extensions == {}
    assert error.type_uri == "https://tollgate.dev/problems/internal-error"
    custom = Teapot("short and stout", spout=1)
    assert (custom.detail, str(custom), custom.extensions) == (
        "short and stout", "short and stout", {"spout": 1},
    )  # fmt: skip
    assert problems.PROBLEM_CONTENT_TYPE == "application/problem+json"


def test_render_problem_answers_rfc9457_with_extensions_but_no_nulls():
    response = problems.render_problem(request(), Teapot("spill", spout="left", lid=None))
    assert response.status_code == 418
    assert body(response) == {
        "type": "https://tollgate.dev/problems/teapot",
        "title": "I am a teapot",
        "status": 418,
        "detail": "spill",
        "instance": "/x/y",
        "request_id": "rid-1",
        "spout": "left",
    }


def test_problem_response_without_detail_request_or_request_id():
    tokens = context.bind(request_id="ctx-9", actor=None)
    try:
        anonymous = problems.problem_response(None, S400)
        plain = FACTORY.get("/p")
        from_context = problems.problem_response(plain, S400)
    finally:
        context.reset(tokens)
    assert body(anonymous)["detail"] == "T"
    assert body(anonymous)["instance"] is None
    assert body(anonymous)["request_id"] == "ctx-9"
    assert body(from_context)["request_id"] == "ctx-9"
    headers = problems.problem_response(None, S429, headers={"A": "b"})
    assert headers["A"] == "b"


@pytest.mark.parametrize(
    ("view", "args", "status", "slug", "title", "detail"),
    [
        (problems.bad_request, (None,), 400, "bad-request", "Bad request", "Bad request"),
        (problems.bad_request, (RequestDataTooBig(),), 413, "payload-too-large",
         "Payload too large", "The request body is larger than the 1 MiB this endpoint accepts."),
        (problems.permission_denied, (None,), 403, "forbidden", "Forbidden", "Forbidden"),
        (problems.not_found, (None,), 404, "not-found", "Not found", "No resource here."),
        (problems.server_error, (), 500, "internal-error", "Internal server error",
         "Internal server error"),
    ],
)  # fmt: skip
def test_djangos_error_views(view, args, status, slug, title, detail):
    response = view(request("/gone"), *args)
    assert response.status_code == status
    got = body(response)
    assert (got["instance"], got["request_id"]) == ("/gone", "rid-1")
    assert (got["type"], got["title"], got["status"], got["detail"]) == (
        problems.PROBLEM_BASE + slug, title, status, detail,
    )  # fmt: skip


def drf(exc):
    return problems.drf_exception_handler(exc, {"request": request("/api/x"), "view": None})


@pytest.mark.parametrize(
    ("exc", "status", "slug", "title"),
    [
        (drf_exceptions.NotAuthenticated(), 401, "not-authenticated", "Authentication required"),
        (drf_exceptions.PermissionDenied(), 403, "forbidden", "Forbidden"),
        (drf_exceptions.NotFound(), 404, "not-found", "Not found"),
        (drf_exceptions.MethodNotAllowed("PUT"), 405, "method-not-allowed", "Method not allowed"),
        (drf_exceptions.NotAcceptable(), 406, "not-acceptable", "Not acceptable"),
        (drf_exceptions.UnsupportedMediaType("x/y"), 415, "unsupported-media-type",
         "Unsupported media type"),
        (drf_exceptions.Throttled(wait=3), 429, "throttled", "Too many requests"),
        (drf_exceptions.ParseError(), 400, "invalid-request", "Invalid request"),
    ],
)  # fmt: skip
def test_drf_errors_get_their_problem_type(exc, status, slug, title):
    response = drf(exc)
    got = body(response)
    assert (response.status_code, got["type"], got["title"], got["status"]) == (
        status, problems.PROBLEM_BASE + slug, title, status,
    )  # fmt: skip
    assert got["detail"] == str(exc.detail)
    assert (got["instance"], got["request_id"]) == ("/api/x", "rid-1")
    assert "errors" not in got


@pytest.mark.parametrize(
    ("status", "slug", "title"),
    [(409, "conflict", "Conflict"), (413, "payload-too-large", "Payload too large"),
     (422, "unprocessable-content", "Unprocessable content"), (402, "error", "Error")],
)  # fmt: skip
def test_drf_status_codes_without_their_own_exception(status, slug, title):
    exc = drf_exceptions.APIException("nope")
    exc.status_code = status
    got = body(drf(exc))
    assert (got["type"], got["title"], got["status"]) == (
        problems.PROBLEM_BASE + slug,
        title,
        status,
    )


def test_drf_headers_passed_on_and_others_dropped():
    throttled = drf(drf_exceptions.Throttled(wait=3))
    assert throttled["Retry-After"] == "3"
    unauthenticated = drf_exceptions.AuthenticationFailed()
    unauthenticated.auth_header = 'Basic realm="api"'
    response = problems.drf_exception_handler(
        unauthenticated, {"request": request(), "view": _BasicView()}
    )
    assert response["WWW-Authenticate"] == 'Basic realm="api"'
    assert drf(drf_exceptions.MethodNotAllowed("PUT")).has_header("Allow") is False


class _BasicView:
    def get_authenticate_header(self, request):
        return 'Basic realm="api"'


def test_drf_validation_errors_are_listed():
    got = body(drf(drf_exceptions.ValidationError({"user": ["This field is required."]})))
    assert got["detail"] == "The request body did not validate."
    assert got["errors"] == {"user": ["This field is required."]}
    assert got["type"].endswith("/invalid-request")


def test_drf_detail_that_is_a_dict_without_a_detail_key_is_shown_whole():
    got = body(drf(drf_exceptions.APIException({"reason": "x"})))
    assert got["status"] == 500 and "reason" in got["detail"]


def test_app_errors_through_drf_and_what_drf_does_not_handle():
    got = body(drf(Teapot("x")))
    assert got["type"].endswith("/teapot") and got["instance"] == "/api/x"
    assert problems.drf_exception_handler(ValueError("boom"), {"request": request()}) is None


def middleware(response):
    def get_response(req):
        assert req.path == "/x/y"  # the request is passed down as it came
        return response

    return problems.ProblemDetailsMiddleware(get_response)


@pytest.mark.parametrize(
    ("status", "slug"),
    [(400, "bad-request"), (403, "forbidden"), (404, "not-found"), (405, "method-not-allowed"),
     (413, "payload-too-large"), (500, "internal-error")],
)  # fmt: skip
def test_middleware_turns_bare_errors_into_problems(status, slug):
    got = middleware(HttpResponse(status=status))(request())
    assert got.status_code == status and body(got)["type"] == problems.PROBLEM_BASE + slug
    assert body(got)["title"] == problems._BARE_PROBLEMS[status].title
    assert (body(got)["instance"], body(got)["request_id"]) == ("/x/y", "rid-1")


def test_middleware_keeps_allow_and_leaves_other_responses_alone():
    got = middleware(HttpResponseNotAllowed(["GET", "HEAD"]))(request())
    assert body(got)["type"].endswith("/method-not-allowed") and got["Allow"] == "GET, HEAD"
    assert middleware(HttpResponse(status=404))(request()).has_header("Allow") is False
    for untouched in (
        HttpResponse("<h1>Not found</h1>", status=404, content_type="text/html"),
        JsonResponse({"a": 1}, status=400),
        HttpResponse(status=418),
        HttpResponse(status=200),
        StreamingHttpResponse(iter([]), status=404),
    ):
        assert middleware(untouched)(request()) is untouched
    untyped = HttpResponse(status=404)
    del untyped["Content-Type"]  # no type at all is still a bare error
    assert body(middleware(untyped)(request()))["type"].endswith("/not-found")
    problem = problems.problem_response(None, problems.ProblemType("s", "T", 404))
    problem.content = b""
    assert middleware(problem)(request()) is problem


@pytest.mark.parametrize("error", [OperationalError("down"), InterfaceError("closed")])
def test_middleware_answers_503_with_retry_after_when_the_database_is_unreachable(error):
    response = middleware(None).process_exception(request(), error)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    got = body(response)
    assert got["instance"] == "/x/y"
    assert (got["type"], got["title"], got["detail"]) == (
        problems.PROBLEM_BASE + "service-unavailable",
        "Service temporarily unavailable",
        "The database is unreachable for a moment. Retry later.",
    )
    assert middleware(None).process_exception(request(), ValueError()) is None


def test_a_problem_error_subclass_registers_its_type_where_it_is_defined():
    assert Teapot.problem is problems.PROBLEM_TYPES["teapot"]
    assert (Teapot.problem.title, Teapot.problem.status) == ("I am a teapot", 418)
    assert Teapot.problem.module == __name__
    assert problems.ProblemError.problem is problems.INTERNAL_ERROR

    class Spout(Teapot):  # no slug of its own: its parent's type, nothing registered
        pass

    assert Spout.problem is Teapot.problem


def test_registering_a_slug_again_returns_it_and_differently_refuses_to_load():
    from django.core.exceptions import ImproperlyConfigured

    assert problems.problem_type("not-found", "Not found", 404) is problems.NOT_FOUND
    with pytest.raises(ImproperlyConfigured, match="'not-found'"):
        problems.problem_type("not-found", "Gone", 404)
    with pytest.raises(ImproperlyConfigured, match="'not-found'"):
        problems.problem_type("not-found", "Not found", 410)
    with pytest.raises(ImproperlyConfigured, match="'service-unavailable'"):
        problems.problem_type(
            "service-unavailable", "Service temporarily unavailable", 503, headers=dict
        )
    assert problems.NOT_FOUND.module == "config.problems"


def test_a_types_headers_are_computed_per_answer_and_explicit_ones_win():
    seconds = ["7"]
    waiting = problems.ProblemType("wait", "Wait", 429, headers=lambda: {"Retry-After": seconds[0]})
    assert problems.problem_response(None, waiting)["Retry-After"] == "7"
    seconds[0] = "8"
    assert problems.problem_response(None, waiting)["Retry-After"] == "8"
    both = problems.problem_response(None, waiting, headers={"Retry-After": "1", "X": "y"})
    assert (both["Retry-After"], both["X"]) == ("1", "y")
    assert problems.problem_response(None, S400).has_header("Retry-After") is False


def test_the_fallback_type_takes_the_status_it_stands_for_and_others_keep_their_own():
    assert problems.ERROR.status is None
    assert problems.problem_response(None, problems.ERROR, status=402).status_code == 402
    assert problems.problem_response(None, problems.ERROR).status_code == 500
    assert problems.problem_response(None, problems.NOT_FOUND, status=402).status_code == 404
