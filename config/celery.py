"""The Celery app. Settings come from Django's (CELERY_* names); tasks live in each app's tasks.py.

The acting user and request id travel with every task in its message headers, so audit rows
written by a worker name whoever caused the work (config/context.py).
"""

# Celery's Task is generic only in its type stubs (celery-types): annotations stay unevaluated.
from __future__ import annotations

import os
from contextvars import Token
from typing import Any

from celery import Celery, Task, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.before_task_publish.connect(dispatch_uid="tollgate.context.publish")
def _attach_context(headers: dict[str, object] | None = None, **_kwargs: object) -> None:
    from config import context

    if headers is not None:
        headers.update(context.to_headers())


_TASK_TOKENS: dict[str, list[Token[Any]]] = {}


@signals.task_prerun.connect(dispatch_uid="tollgate.db.prerun")
@signals.task_postrun.connect(dispatch_uid="tollgate.db.postrun")
def _database_connections_as_for_a_request(
    task: Task[..., object] | None = None, **_kwargs: object
) -> None:
    """Reuse the database connection across tasks the way Django does across web requests.

    Celery's Django fixup would open a new PostgreSQL connection for every task (costlier than
    most of our tasks); with CELERY_DB_REUSE_MAX set it only does that every so many tasks, and
    this closes a connection that failed or outlived CONN_MAX_AGE; CONN_HEALTH_CHECKS then
    checks it before the task's first query (a PostgreSQL restart costs no task).
    """
    if task is not None and task.request.is_eager:
        return  # inline in the caller's request or transaction: its connection, not ours
    from django.db import close_old_connections

    close_old_connections()


@signals.task_prerun.connect(dispatch_uid="tollgate.context.prerun")
def _restore_context(task_id: str, task: Task[..., object], **_kwargs: object) -> None:
    from config import context

    request = task.request
    if request.is_eager:
        # Eager tasks run inside the caller's own context already.
        return
    # Custom message headers surface as attributes of the task request (protocol 2).
    headers = {
        "tollgate_request_id": getattr(request, "tollgate_request_id", None),
        "tollgate_actor": getattr(request, "tollgate_actor", None),
    }
    request_id, actor = context.from_headers(headers)
    _TASK_TOKENS[task_id] = context.bind(request_id=request_id, actor=actor)


@signals.worker_process_shutdown.connect(dispatch_uid="tollgate.metrics.process_dead")
def _mark_metrics_process_dead(pid: int | None = None, **_kwargs: object) -> None:
    # Prometheus multiprocess mode: a dead worker child's live gauges must stop counting.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        # prometheus_client leaves mark_process_dead unannotated.
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


@signals.task_postrun.connect(dispatch_uid="tollgate.context.postrun")
def _clear_context(task_id: str, **_kwargs: object) -> None:
    from config import context

    tokens = _TASK_TOKENS.pop(task_id, None)
    if tokens:
        context.reset(tokens)
