"""Start and stop the server processes a benchmark runs against: gunicorn, a Celery worker."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


# Processes this run started and that are still running, and the CPU seconds of those that
# ended: {(role, pid): user + system seconds, their reaped descendants included}. A phase's CPU
# is then never lost when a process exits between two readings (bench/profile.py).
RUNNING: list["Proc"] = []
EXITED_CPU: dict[tuple[str, int], float] = {}


class Proc:
    """A child process in its own process group, logging to a file. `role` names its tier in
    the CPU accounting (bench/profile.py)."""

    def __init__(self, name: str, argv: list[str], env: dict, logdir: Path, *, role: str = ""):
        self.name, self.argv, self.env = name, argv, env
        self.role = role or name
        self.log = logdir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        handle = open(self.log, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.popen = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        RUNNING.append(self)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        # The main process only: gunicorn's master and Celery's parent shut their children
        # down warmly (a group-wide SIGTERM would kill Celery's pool mid-task).
        self.popen.send_signal(signal.SIGTERM)
        if not self._reap(timeout):
            os.killpg(self.popen.pid, signal.SIGKILL)
            self._reap(None)

    def wait(self, timeout: float) -> bool:
        """Wait for the process to end by itself; False if it still runs after `timeout`."""
        return self._reap(timeout)

    def kill9(self) -> None:
        """SIGKILL the whole group: no clean shutdown, no acknowledgement of running tasks."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self._reap(None)

    def _reap(self, timeout: float | None) -> bool:
        """Wait for the process to end (False after `timeout`), keeping its CPU time: wait4's
        resource usage covers the process and every descendant it reaped (gunicorn's workers,
        Celery's pool)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                pid, status, usage = os.wait4(self.popen.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (Popen.poll): its CPU is unknown
                self.popen.wait()
                break
            if pid:
                self.popen.returncode = os.waitstatus_to_exitcode(status)
                EXITED_CPU[(self.role, pid)] = usage.ru_utime + usage.ru_stime
                break
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        if self in RUNNING:
            RUNNING.remove(self)
        return True


def gunicorn(env: dict, logdir: Path, *, port: int, workers: int = 4, threads: int = 2) -> Proc:
    argv = [
        str(BIN / "gunicorn"), "config.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--worker-class", "gthread", "--threads", str(threads),
        "--keep-alive", "30", "--backlog", "2048", "--log-level", "warning",
    ]  # fmt: skip
    proc = Proc(f"gunicorn-{port}", argv, env, logdir, role="gunicorn").start()
    wait_http(f"http://127.0.0.1:{port}/healthz")
    return proc


def celery_worker(
    env: dict, logdir: Path, *, concurrency: int = 2, name: str = "worker", nice: int = 0
) -> Proc:
    """`nice`: the worker's CPU priority below the web tier's (`ingest_web_first`)."""
    argv = [
        str(BIN / "celery"), "-A", "config", "worker", "--concurrency", str(concurrency),
        "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "-n", f"{name}@%h",
    ]  # fmt: skip
    if nice:
        argv = ["nice", "-n", str(nice), *argv]
    return Proc(name, argv, env, logdir, role="celery").start()


def relay(env: dict, logdir: Path, *, name: str = "relay") -> Proc:
    """The outbox relay (manage.py billing_relay): publishes stored events to the broker."""
    argv = [sys.executable, "manage.py", "billing_relay"]
    return Proc(name, argv, env, logdir, role="relay").start()


def audit_sealer(env: dict, logdir: Path) -> Proc:
    """The long-running sealer, as docs/deploy.md runs it (checks skipped, as the benchmark's
    other commands do: dj-stripe's refuses the fake Stripe API's host with DEBUG off)."""
    argv = [str(BIN / "python"), "manage.py", "audit_seal", "--skip-checks"]
    return Proc("audit-seal", argv, env, logdir).start()


class FakeStripeProc(Proc):
    """The fake Stripe API (manage.py stripe_fake_api) in its own process, so its CPU is
    counted apart from ours and the load generator's, driven over loopback HTTP."""

    def __init__(self, env: dict, logdir: Path, *, port: int):
        argv = [sys.executable, "manage.py", "stripe_fake_api", "--port", str(port)]
        super().__init__("stripe-fake", argv, env, logdir, role="stripe_fake")
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> "FakeStripeProc":
        super().start()
        wait_http(f"{self.url}/v1/account")
        return self

    def record(self, payloads: list[dict], *, chunk: int = 500) -> None:
        """Hand events over: the fake answers for their objects (dj-stripe fetches them)."""
        from billing.simulator.fake_api import hand_over

        for start in range(0, len(payloads), chunk):
            hand_over(self.url, payloads[start : start + chunk])

    def set_mode(self, mode: str) -> None:
        from billing.simulator.fake_api import set_mode

        set_mode(self.url, mode)
