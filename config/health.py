"""Liveness and readiness probes for load balancers and orchestrators."""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from config.celery import app as celery_app


@require_GET
def healthz(request):
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
def readyz(request):
    """Readiness: each dependency by name; 503 naming the failing ones."""
    results, failing = {}, []
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
