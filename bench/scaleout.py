"""Scale-out shown, not claimed: the same backlog processed by 1, 2 and 4 worker processes.

For each worker count: a fresh worker starts and, once it answers, stops consuming (Celery's
remote control, the pool stays warm); the web tier acknowledges the events and the relay
publishes them; then the worker consumes again and drains the backlog with the web tier idle.
CPU time is read per tier (bench/profile.py: exited processes included) around each phase, so
the figures give CPU ms per event of each tier and, from those, the capacity model of
docs/deploy.md (events/s per core of each tier).
"""

import socket
import time

from bench import events, profile

WORKER_COUNTS = (1, 2, 4)


def _worker_ready(app, name: str, *, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(destination=[name], timeout=1.0):
            return
    raise RuntimeError(f"the Celery worker {name} did not answer within {timeout}s")


def _consuming(app, name: str, *, on: bool, timeout: float = 60.0) -> None:
    """Have the worker stop (or start) consuming the task queue, and wait until it says so.

    A remote-control broadcast is fire-and-forget: one that goes unanswered may not have
    reached the worker. One full run's one-process phase applied nothing for 90 s (2026-12-01
    05:18), which a lost `add_consumer` would explain; so the command is repeated until the
    worker's own list of queues shows it took effect."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if on:
            app.control.add_consumer("celery", destination=[name], reply=True, timeout=2.0)
        else:
            app.control.cancel_consumer("celery", destination=[name], reply=True, timeout=2.0)
        queues = app.control.inspect(destination=[name], timeout=2.0).active_queues() or {}
        names = {queue["name"] for queue in queues.get(name, [])}
        if name in queues and ("celery" in names) == on:
            return
        time.sleep(0.5)
    state = "consume" if on else "stop consuming"
    raise RuntimeError(f"the Celery worker {name} did not {state} the queue within {timeout}s")


def _wait_queued(ctx, event_ids: list[str], *, timeout: float = 300.0) -> None:
    """Until the relay has published every one of these events."""
    from billing.models import StripeEvent

    deadline = time.monotonic() + timeout
    waiting = StripeEvent.objects.filter(event_id__in=event_ids, queued_at__isnull=True)
    while waiting.exists():
        if ctx.relay.popen.poll() is not None:
            raise RuntimeError(f"the relay died: see {ctx.relay.log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the relay did not publish the backlog in time: {ctx.relay.log}")
        time.sleep(0.2)


def _last_applied(event_ids: list[str]) -> float:
    """When the last of these events was applied (the database's clock is this machine's)."""
    from django.db.models import Max

    from billing.models import StripeEvent

    last = StripeEvent.objects.filter(event_id__in=event_ids).aggregate(Max("applied_at"))
    if last["applied_at__max"] is None:
        raise RuntimeError("scaleout: no event of the backlog was applied (see the worker's log)")
    return last["applied_at__max"].timestamp()


def bench_scaleout(ctx, report) -> None:
    from bench.run import CLIENTS, SECRET, lifecycle_payloads, send_closed, wait_applied, warm_up
    from config.celery import app

    name = f"worker@{socket.gethostname()}"
    warm_up(ctx, "scaleout", timeout=300)
    figures = {}
    for workers in WORKER_COUNTS:
        ctx.worker.stop()
        ctx.start_worker(concurrency=workers)
        _worker_ready(app, name)
        _consuming(app, name, on=False)
        payloads = lifecycle_payloads(ctx.n(1000))
        ids = [p["id"] for p in payloads]
        requests = [events.sign(p, SECRET, ctx.webhook_path) for p in payloads]
        before = profile.cpu_seconds_by_role()
        acks = send_closed(ctx, requests, concurrency=CLIENTS, label=f"scaleout {workers}: acks")
        _wait_queued(ctx, ids)
        queued = profile.cpu_seconds_by_role()
        started = time.time()
        _consuming(app, name, on=True)
        applied, _ = wait_applied(ids, timeout=900, label=f"scaleout {workers}", ctx=ctx)
        drained = profile.cpu_seconds_by_role()
        finished = _last_applied(ids)  # not the poll's time: wait_applied looks every 0.25 s
        prefix = f"w{workers}"
        figures[f"{prefix}_events"] = len(ids)
        figures[f"{prefix}_acks_error_rate"] = acks.error_rate
        figures[f"{prefix}_acks_per_s"] = acks.summary()["rate_per_s"]
        figures[f"{prefix}_applied"] = applied
        figures[f"{prefix}_end_to_end_per_s"] = round(applied / (finished - started), 1)
        acks_cpu = profile.cpu_ms_per_event(before, queued, len(ids))
        drain_cpu = profile.cpu_ms_per_event(queued, drained, max(1, applied))
        figures.update({f"{prefix}_acks_{k}": v for k, v in acks_cpu.items()})
        figures.update({f"{prefix}_drain_{k}": v for k, v in drain_cpu.items()})
        figures[f"{prefix}_cpu_ms_per_event_all_tiers"] = round(
            sum(acks_cpu.values()) + sum(drain_cpu.values()), 2
        )
    one = figures["w1_end_to_end_per_s"]
    for workers in WORKER_COUNTS[1:]:
        value = figures[f"w{workers}_end_to_end_per_s"]
        figures[f"end_to_end_w{workers}_vs_w1"] = round(value / one, 2) if one else None
    figures.update(capacity(figures))
    ctx.worker.stop()
    ctx.start_worker()
    report.section(
        "scaleout",
        "Scale-out: a backlog drained by 1, 2 and 4 worker processes (web tier idle), CPU ms "
        "per event by tier",
        figures,
    )


def capacity(figures: dict) -> dict:
    """Events/s one core of each tier sustains, from the one-process run's CPU per event (the
    least contended): the capacity model of docs/deploy.md."""

    def per_core(ms: float | None) -> float | None:
        return round(1000 / ms, 1) if ms else None

    postgres = (figures.get("w1_acks_cpu_ms_per_event_postgres") or 0) + (
        figures.get("w1_drain_cpu_ms_per_event_postgres") or 0
    )
    return {
        "capacity_events_per_s_per_web_core": per_core(
            figures.get("w1_acks_cpu_ms_per_event_gunicorn")
        ),
        "capacity_events_per_s_per_worker_core": per_core(
            figures.get("w1_drain_cpu_ms_per_event_celery")
        ),
        "capacity_events_per_s_per_relay_core": per_core(
            figures.get("w1_acks_cpu_ms_per_event_relay")
        ),
        "capacity_events_per_s_per_postgres_core": per_core(postgres),
    }


CAPACITY_BEGIN = "<!-- capacity:begin"
CAPACITY_END = "<!-- capacity:end -->"
CAPACITY_ROWS = (
    ("events/s per web core (acknowledging)", "capacity_events_per_s_per_web_core"),
    ("events/s per worker core (applying)", "capacity_events_per_s_per_worker_core"),
    ("events/s per relay core", "capacity_events_per_s_per_relay_core"),
    ("events/s per PostgreSQL core (storing and applying)",
     "capacity_events_per_s_per_postgres_core"),
    ("CPU ms per event, all tiers (1 worker process)", "w1_cpu_ms_per_event_all_tiers"),
    ("processed end to end with 1 worker process (events/s)", "w1_end_to_end_per_s"),
    ("... with 2 worker processes", "w2_end_to_end_per_s"),
    ("... with 4 worker processes", "w4_end_to_end_per_s"),
    ("2 vs 1 worker processes", "end_to_end_w2_vs_w1"),
    ("4 vs 1 worker processes", "end_to_end_w4_vs_w1"),
)  # fmt: skip


def write_capacity(report, path) -> bool:
    """Put the last scaleout figures between docs/deploy.md's capacity markers; False when
    there are none (no scaleout section, no markers)."""
    section = report.sections.get("scaleout")
    text = path.read_text()
    if section is None or CAPACITY_BEGIN not in text or CAPACITY_END not in text:
        return False
    _title, figures, command, date = section
    lines = [f"Measured by `{command}`, {date}, on the bench's machine (docs/benchmarks.md).", "",
             "| figure | value |", "| --- | --- |"]  # fmt: skip
    lines += [f"| {label} | {figures.get(key)} |" for label, key in CAPACITY_ROWS]
    head, rest = text.split(CAPACITY_BEGIN, 1)
    marker_line, _, rest = rest.partition("\n")
    _old, tail = rest.split(CAPACITY_END, 1)
    body = "\n".join(lines)
    path.write_text(f"{head}{CAPACITY_BEGIN}{marker_line}\n{body}\n{CAPACITY_END}{tail}")
    return True


SCENARIOS = {"scaleout": bench_scaleout}
