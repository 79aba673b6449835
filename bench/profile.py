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

from bench import procs

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


def _proc_table() -> dict[int, tuple[int, float]]:
    """{pid: (parent pid, CPU seconds of the process and of its reaped children)} from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        # stat(5): ppid is field 4; utime, stime, cutime, cstime are fields 14 to 17.
        ppid, cpu = int(fields[1]), sum(int(f) for f in fields[11:15]) / ticks
        table[int(entry.name)] = (ppid, cpu)
    return table


def _pid_from_file(path: str | None) -> int | None:
    try:
        return int(Path(path).read_text().split()[0]) if path else None
    except (OSError, ValueError, IndexError):
        return None


def _roots() -> list[tuple[str, int]]:
    """(role, pid) of each process tree the run measures: the ones it started (bench/procs.py),
    the PostgreSQL postmaster and the Redis server of .ci/with-services.sh. Only these trees:
    other users of the machine (another run, another engineer's tests) are never counted."""
    roots = [(proc.role, proc.popen.pid) for proc in procs.RUNNING if proc.popen is not None]
    pg_data = os.environ.get("TOLLGATE_TEST_PG_DATA")
    services = os.environ.get("TOLLGATE_TEST_SERVICES_DIR")
    for role, pid in (
        ("postgres", _pid_from_file(pg_data and f"{pg_data}/postmaster.pid")),
        ("redis", _pid_from_file(services and f"{services}/redis.pid")),
    ):
        if pid is not None:
            roots.append((role, pid))
    return roots


def cpu_seconds_by_role() -> dict[tuple[str, int], float]:
    """CPU seconds (user + system) used so far by each measured process tree, keyed by (role,
    root pid): the root, its live descendants, and every descendant that ended (a gunicorn
    worker recycled, a PostgreSQL backend closed, a Celery pool process replaced: their time
    is in their parent's cutime/cstime), plus trees that ended (procs.EXITED_CPU, from wait4).
    Linux /proc; only the exited trees elsewhere."""
    totals = dict(procs.EXITED_CPU)
    if not Path("/proc").is_dir():
        return totals
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    for role, root in _roots():
        if (role, root) in totals or root not in table:
            continue
        cpu, stack = 0.0, [root]
        while stack:
            pid = stack.pop()
            cpu += table[pid][1]
            stack += children.get(pid, [])
        totals[(role, root)] = cpu
    return totals


def cpu_ms_per_event(before: dict, after: dict, events: int) -> dict[str, float]:
    """CPU ms per event of each role between two readings of cpu_seconds_by_role.

    Each tree's own counter only grows, so each difference is 0 or more: a tree that started
    in between counts from 0; one that ended in between without being reaped by this run (a
    Redis server restarted by a drill) is missing from `after` and adds nothing."""
    by_role: dict[str, float] = {}
    for (role, pid), seconds in after.items():
        spent = max(0.0, seconds - before.get((role, pid), 0.0))
        by_role[role] = by_role.get(role, 0.0) + spent
    for role, _ in before:
        by_role.setdefault(role, 0.0)
    return {
        f"cpu_ms_per_event_{role}": round(1000 * seconds / max(1, events), 2)
        for role, seconds in sorted(by_role.items())
    }
