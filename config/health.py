"""Liveness and readiness probes for load balancers and orchestrators, and the metrics scrape."""

import hmac

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from django_prometheus import exports

from config.celery import app as celery_app
from config.problems import METRICS_TOKEN_REQUIRED, problem_response


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process is up and serving. Touches no dependency on purpose."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    if settings.REDIS_URL:
        # django-redis swallows errors on normal calls (Redis is a fast path only), so
        # readiness asks the server directly.
        from django_redis import get_redis_connection

        get_redis_connection("default").ping()
    else:
        cache.get("readyz")


def _check_broker() -> None:
    if celery_app.conf.task_always_eager:
        return
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=1)


CHECKS = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: each dependency by name; 503 naming the failing ones."""
    results: dict[str, dict[str, str]] = {}
    failing: list[str] = []
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure of a dependency means "not ready"
            results[name] = {"status": "down", "error": exc.__class__.__name__}
            failing.append(name)
        else:
            results[name] = {"status": "ok"}
    status = 503 if failing else 200
    return JsonResponse(
        {"status": "unavailable" if failing else "ok", "failing": failing, "checks": results},
        status=status,
    )


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape. Absent (404) unless METRICS_ENABLED; with METRICS_TOKEN set, only a
    request bearing that token is served: the numbers describe traffic, failures and staff
    sign-ins, which is nobody's business outside monitoring."""
    if not settings.METRICS_ENABLED:
        raise Http404
    expected = settings.METRICS_TOKEN
    if expected and not hmac.compare_digest(_bearer_token(request).encode(), expected.encode()):
        return problem_response(
            request,
            METRICS_TOKEN_REQUIRED,
            detail="Send the metrics token as 'Authorization: Bearer <METRICS_TOKEN>'.",
        )
    response: HttpResponse = exports.ExportToDjangoView(request)  # django-prometheus: untyped
    return response
