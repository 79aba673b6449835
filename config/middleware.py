"""Request-scoped context: a request id on every log line and response, and the actor."""

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from config import context
from config.client import client_ip

# A caller-supplied id is kept only when it is short and harmless in logs and headers. It is a
# correlation label, never a key: callers may repeat it, so nothing may assume it is unique
# (tests/config/test_request_id.py).
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    """Take X-Request-ID from the caller when sane, else make one; echo it in the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        supplied = request.headers.get("X-Request-ID", "")
        request_id = supplied if VALID_REQUEST_ID.match(supplied) else uuid.uuid4().hex
        # An attribute of our own on Django's request (read by config/problems.py).
        request.request_id = request_id  # type: ignore[attr-defined]
        # Bound for the rest of this request, without reset at the end: Django writes its
        # "Not Found"/"Server Error" lines after the middleware chain has returned, and they
        # must carry the id too. The next request on this thread starts from a clean slate.
        context.start_request(
            request_id,
            remote_ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class ActorMiddleware:
    """After authentication: record the signed-in user as the actor of this request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            tokens = context.bind(actor=context.Actor(kind="user", user_id=user.pk))
            try:
                return self.get_response(request)
            finally:
                for token in reversed(tokens):
                    token.var.reset(token)
        return self.get_response(request)
