"""Start and stop the throwaway servers of make test from inside a test."""

import os
import socket
import subprocess
import time

import pytest


def require_postgres(connection, *, needs_redis: bool = False) -> None:
    """Skip a test that needs PostgreSQL (and Redis) outside `make test`; fail it under CI=true,
    where a missing server must never pass unnoticed."""
    from django.conf import settings

    missing = connection.vendor != "postgresql" or (needs_redis and not settings.REDIS_URL)
    if not missing:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true needs the PostgreSQL and Redis servers of `make test`")
    pytest.skip("needs the PostgreSQL and Redis servers of `make test`")


def database_url_of(connection) -> str:
    """DATABASE_URL of pytest-django's test database, for a server started in a subprocess."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, port: int, workdir: str):
        self.port = port
        self.workdir = workdir

    def ping(self) -> bool:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
        )
        return result.stdout.strip() == "PONG"

    def stop(self) -> None:
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True
        )
        for _ in range(50):
            if not self.ping():
                return
            time.sleep(0.1)
        raise RuntimeError("redis did not stop")

    def start(self) -> None:
        if self.ping():
            return
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                self.workdir,
                "--pidfile",
                f"{self.workdir}/redis.pid",
                "--logfile",
                f"{self.workdir}/redis.log",
            ],
            check=True,
        )
        for _ in range(50):
            if self.ping():
                return
            time.sleep(0.1)
        raise RuntimeError("redis did not start")


def stop_process(process: subprocess.Popen) -> None:
    """Stop a server a test started: politely (SIGTERM), then for good after 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
