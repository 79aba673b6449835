"""Sampling profiles for `make bench BENCH_ARGS="--only tiers --profile"` (py-spy, no code change).

py-spy attaches to a running process (it needs ptrace rights: root, or
kernel.yama.ptrace_scope=0) and samples its Python stacks; `summary` turns the raw samples into
the share of samples spent inside each of our functions and a few telling library calls.
"""

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

PY_SPY = Path(sys.executable).with_name("py-spy")
OURS = re.compile(r"\((?:billing|entitlements|audit|staff|config)/[\w/]+\.py:\d+\)")
# Library calls that explain where time goes: waiting for PostgreSQL, publishing to the broker,
# Redis, building SQL, and Django's model validation.
TELLING = (
    "Connection.wait (psycopg/connection.py",
    "Celery.send_task (celery/app/base.py",
    "Redis.execute_command (redis/client.py",
    "SQLCompiler.as_sql (django/db/models/sql/compiler.py",
    "Model.full_clean (django/db/models/base.py",
    "BaseDatabaseWrapper.close_if_health_check_failed (django/db/backends/base/base.py",
)


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in out.split()]


def record(pid: int, seconds: int, out: Path) -> subprocess.Popen:
    argv = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(seconds),
            "--format", "raw", "--output", str(out), "--rate", "200"]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summary(raw: Path, *, top: int = 16) -> dict:
    """{function: % of samples with it on the stack}, ours and TELLING, largest first."""
    inclusive, total = Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        names = set()
        for frame in stack.split(";"):
            library = frame.split("site-packages/")[-1]
            if "Middleware.__call__" in frame:
                continue  # the middleware stack wraps every request: no information
            if OURS.search(frame) or any(library.startswith(t) for t in TELLING):
                names.add(re.sub(r":\d+\)$", ")", library))
        for name in names:
            inclusive[name] += samples
    if not total:
        return {"samples": 0}
    shares = {name: round(100 * n / total, 1) for name, n in inclusive.most_common(top)}
    return {"samples": total, **shares}


ROLES = (("gunicorn", "gunicorn"), ("celery", "celery"), ("postgres", "postgres"),
         ("redis-server", "redis"), ("stripe_fake_api", "stripe_fake"))  # fmt: skip


def cpu_seconds_by_role() -> dict[str, float]:
    """CPU seconds (user + system) used so far by the stack's processes, by role (Linux /proc;
    {} elsewhere). The difference of two readings is what a phase cost each role."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    totals: dict[str, float] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return totals
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        role = next((name for marker, name in ROLES if marker in command), None)
        if role is not None:
            totals[role] = totals.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return totals


def cpu_ms_per_event(before: dict, after: dict, events: int) -> dict[str, float]:
    return {
        f"cpu_ms_per_event_{role}": round(1000 * (after.get(role, 0) - before.get(role, 0))
                                          / events, 2)
        for role in sorted(after)
    }  # fmt: skip
