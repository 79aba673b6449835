"""Celery tasks reuse the database connection as web requests do, and drop a broken one."""

import pytest
from celery import signals
from django.conf import settings
from django.db import OperationalError, connection

from billing import tasks
from config.celery import app
from tests.servers import require_postgres


def _around_a_task(*, eager: bool) -> None:
    """The signals a worker sends around each task (here without running it)."""
    task = tasks.apply_event
    task.push_request(is_eager=eager)
    try:
        signals.task_prerun.send(sender=task, task_id="t", task=task, args=(), kwargs={})
        signals.task_postrun.send(sender=task, task_id="t", task=task, args=(), kwargs={})
    finally:
        task.pop_request()


def test_celery_is_told_to_reuse_connections():
    # Celery's Django fixup reads this; without it, it closes the connection around each task.
    assert app.conf.get("CELERY_DB_REUSE_MAX") == settings.CELERY_DB_REUSE_MAX > 1


@pytest.mark.django_db(transaction=True)
def test_a_healthy_connection_is_kept_across_tasks():
    require_postgres(connection)
    # A fresh connection: the session's may have been opened more than CONN_MAX_AGE ago
    # (migrating the test database on a busy machine), and an obsolete one is rightly closed.
    connection.close()
    connection.ensure_connection()
    raw = connection.connection
    for _ in range(3):
        _around_a_task(eager=False)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert connection.connection is raw


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_dropped_is_replaced_before_the_next_task():
    require_postgres(connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        old_pid = cursor.fetchone()[0]
    # The server ends this session (as a PostgreSQL restart would).
    with pytest.raises(OperationalError), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    _around_a_task(eager=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid


@pytest.mark.django_db(transaction=True)
def test_an_eager_task_leaves_its_callers_connection_alone():
    require_postgres(connection)
    connection.ensure_connection()
    raw = connection.connection
    connection.close_at = 0  # obsolete: a non-eager task would replace it
    _around_a_task(eager=True)
    assert connection.connection is raw
    _around_a_task(eager=False)
    assert connection.connection is not raw
