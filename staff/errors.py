"""Staff access's problem types (docs/errors.md lists them)."""

from django.conf import settings

from config.problems import problem_type


def _lockout_retry_after() -> dict[str, str]:
    # When the lockout ends for an attempt made now: AXES_COOLOFF_SECONDS, read per answer.
    return {"Retry-After": str(int(settings.AXES_COOLOFF_TIME.total_seconds()))}


# django-axes' lockout answer (staff/views.py:locked_out).
LOGIN_LOCKED_OUT = problem_type(
    "login-locked-out", "Too many failed sign-ins", 429, headers=_lockout_retry_after
)
