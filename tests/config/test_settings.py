"""Settings load from the environment, with embedded defaults and strict production rules."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'db': s.DATABASES['default']['ENGINE'],"
    " 'cache': s.CACHES['default']['BACKEND'],"
    " 'eager': s.CELERY_TASK_ALWAYS_EAGER, 'debug': s.DEBUG, 'api': s.STRIPE_API_VERSION,"
    " 'fk': s.DJSTRIPE_FOREIGN_KEY_TO_FIELD, 'hosts': s.ALLOWED_HOSTS}))"
)
TOLLGATE_VARS = {
    "DJANGO_ENV",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "STRIPE_SECRET_KEY",
    "STRIPE_API_VERSION",
    "AUDIT_CHECKPOINT_KEY",
    "AUDIT_SIGNING_KEY",
    "AUDIT_SIGNING_KEY_FILE",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
}


def run_python(args, **env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in TOLLGATE_VARS}
    env.update(env_overrides)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def production_env(**overrides):
    env = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "billing.example.com",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://u@127.0.0.1:5/db"),
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "STRIPE_SECRET_KEY": "sk_live_" + secrets.token_hex(12),
        "AUDIT_CHECKPOINT_KEY": secrets.token_hex(32),
        "AUDIT_SIGNING_KEY": secrets.token_hex(32),  # an Ed25519 seed
    }
    env.update(overrides)
    return env


def test_embedded_defaults_need_no_services():
    import json

    result = run_python(["-c", PROBE])
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["db"].endswith("sqlite3")
    assert loaded["cache"].endswith("LocMemCache")
    assert loaded["eager"] is True
    assert loaded["fk"] == "id"
    assert loaded["api"] == "2026-05-27.dahlia"


def test_environment_overrides_defaults():
    import json

    result = run_python(
        ["-c", PROBE],
        DATABASE_URL="postgres://u:p@db.internal:5432/tollgate",
        REDIS_URL="redis://cache.internal:6379/1",
        STRIPE_API_VERSION="2025-01-01.test",
        ALLOWED_HOSTS="a.example.com,b.example.com",
        DEBUG="false",
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["db"].endswith("postgresql")
    assert loaded["cache"].endswith("RedisCache")
    assert loaded["eager"] is False
    assert loaded["debug"] is False
    assert loaded["api"] == "2025-01-01.test"
    assert loaded["hosts"] == ["a.example.com", "b.example.com"]


def test_production_names_every_missing_setting():
    result = run_python(["-c", PROBE], DJANGO_ENV="production", SECRET_KEY="x" * 60)
    assert result.returncode != 0
    for name in ("ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "STRIPE_SECRET_KEY"):
        assert name in result.stderr
    assert "requires these environment variables" in result.stderr


def test_production_refuses_debug_and_weak_secret_key():
    debug_on = run_python(["-c", PROBE], **production_env(DEBUG="true"))
    assert debug_on.returncode != 0 and "DEBUG must be off" in debug_on.stderr
    weak_key = run_python(["-c", PROBE], **production_env(SECRET_KEY="short"))
    assert weak_key.returncode != 0 and "SECRET_KEY" in weak_key.stderr


@pytest.fixture
def app_role_database_url():
    """DATABASE_URL as production uses it: a role that is no superuser and owns nothing (the
    test server's own role is the superuser `postgres`, which audit.W001 reports)."""
    url = production_env()["DATABASE_URL"]
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        yield url  # no server: the check finds no database to inspect
        return
    import psycopg

    role = f"tollgate_check_{secrets.token_hex(4)}"
    parts = urlsplit(url)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER")
    try:
        yield urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {role}")


def test_check_deploy_is_clean_in_production(app_role_database_url):
    env = production_env(
        **({"DATABASE_URL": app_role_database_url} if app_role_database_url else {})
    )
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_no_missing_migrations():
    result = run_python(["manage.py", "makemigrations", "--check", "--dry-run"])
    assert result.returncode == 0, result.stdout + result.stderr


SQLITE_WRITERS = """
import json, threading, django
django.setup()
from django.db import connection, connections, transaction
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE counter (n integer)")
errors, start = [], threading.Barrier(4)
def writer():
    try:
        start.wait()
        for _ in range(25):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM counter")  # a reader that turns writer
                cursor.fetchone()
                cursor.execute("INSERT INTO counter VALUES (1)")
    except Exception as error:
        errors.append(repr(error))
    finally:
        connections.close_all()
threads = [threading.Thread(target=writer) for _ in range(4)]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
with connection.cursor() as cursor:
    cursor.execute("SELECT count(*) FROM counter")
    print(json.dumps({"errors": errors, "rows": cursor.fetchone()[0]}))
"""


def test_sqlite_writers_in_threads_wait_instead_of_failing(tmp_path):
    # make run applies events inline in runserver's threads; SQLite's deferred transactions
    # would fail with "database is locked" when a reader turns writer during another write.
    result = run_python(
        ["-c", SQLITE_WRITERS], DATABASE_URL=f"sqlite:///{tmp_path / 'writers.sqlite3'}"
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"errors": [], "rows": 100}
