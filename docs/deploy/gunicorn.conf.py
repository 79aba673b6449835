"""Gunicorn settings for Tollgate (docs/deploy.md explains each choice).

Run: gunicorn -c docs/deploy/gunicorn.conf.py config.wsgi
Gunicorn's own environment variables still apply (WEB_CONCURRENCY, FORWARDED_ALLOW_IPS,
GUNICORN_CMD_ARGS).
"""

import multiprocessing
import os
import shutil
from pathlib import Path

bind = "0.0.0.0:8000"
# Webhooks are short and I/O bound (PostgreSQL, Redis): a few processes with threads each.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = 4
# Stripe gives up on a delivery after about 10 s (and retries); a request still running after
# 30 s is stuck, so the worker is replaced rather than left holding a database connection.
timeout = 30
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (bounded memory); jitter keeps them from restarting together.
max_requests = 2000
max_requests_jitter = 200
# The app writes JSON logs to stdout itself; gunicorn's access log would only duplicate them.
accesslog = None
errorlog = "-"
# Proxies whose X-Forwarded-* headers are trusted: gunicorn reads FORWARDED_ALLOW_IPS itself.


def on_starting(server):
    """prometheus_client multiprocess mode: every process writes its metrics to files in
    PROMETHEUS_MULTIPROC_DIR and /metrics sums them. Files of a previous run would be counted
    again, so the directory is emptied when the master starts (never on a reload)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    if path.exists():
        for child in path.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    path.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    """A worker is gone: its live gauges (tollgate_billing_dead_letters) must stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
