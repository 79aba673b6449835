"""Staff session limits: an idle timeout and an absolute lifetime."""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponseBase

STARTED_KEY = "staff_session_started"
SEEN_KEY = "staff_session_seen"


class StaffSessionMiddleware:
    """End a staff member's session after STAFF_SESSION_IDLE_SECONDS without a request, or
    STAFF_SESSION_MAX_SECONDS after sign-in, whichever comes first. Customers' sessions are
    left to SESSION_COOKIE_AGE."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_staff:
            now = int(time.time())
            started = request.session.setdefault(STARTED_KEY, now)
            seen = request.session.get(SEEN_KEY, now)
            idle = now - seen > settings.STAFF_SESSION_IDLE_SECONDS
            expired = now - started > settings.STAFF_SESSION_MAX_SECONDS
            if idle or expired:
                logout(request)
            else:
                request.session[SEEN_KEY] = now
        return self.get_response(request)
