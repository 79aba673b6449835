"""Fault drills: break one dependency while signed events stream in, then count what survived.

Each drill sends distinct events at a steady rate from the load generator (which, like Stripe,
retries every non-2xx with a backoff), breaks something part-way, repairs it, waits for the
work to drain and reports: sent, acknowledged, processed, lost, applied twice.

Beat's `billing.tasks.requeue_stale_events` (every 5 minutes in production) is run by the
driver every few seconds here, with a short staleness threshold, so the drills finish quickly.
"""

import os
import subprocess
import threading
import time

from django.db import connections

from bench import events, loadgen, procs

RATE = 60.0  # events offered per second during a drill
DURATION_S = 20.0
FAULT_AT_S = 5.0
RETRIES = 12  # the sender's retries per delivery (backoff 0.05 s, 0.1 s, ... up to 0.6 s)
STALE_AFTER_S = 10


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def restart_postgres() -> None:
    pg_bin, pg_data = os.environ["TOLLGATE_TEST_PG_BIN"], os.environ["TOLLGATE_TEST_PG_DATA"]
    subprocess.run(
        _as_postgres([f"{pg_bin}/pg_ctl", "-D", pg_data, "-m", "fast", "-w", "restart",
                      "-l", f"{pg_data}/server.log"]),
        check=True, capture_output=True,
    )  # fmt: skip


def stop_redis() -> None:
    port = os.environ["TOLLGATE_TEST_REDIS_PORT"]
    subprocess.run(["redis-cli", "-p", port, "shutdown", "nosave"], capture_output=True)


def start_redis() -> None:
    from tests.servers import RedisServer

    RedisServer(
        int(os.environ["TOLLGATE_TEST_REDIS_PORT"]), os.environ["TOLLGATE_TEST_SERVICES_DIR"]
    ).start()


def _drain(ctx, ids: list[str], *, label: str, timeout: float = 300.0) -> int:
    """Wait until every event is applied, sweeping stale ones as beat would."""
    from django.db import OperationalError, connections

    from billing.models import StripeEvent
    from billing.services import event_requeue_stale

    deadline = time.monotonic() + timeout
    applied = 0
    while time.monotonic() < deadline:
        # The driver's own connection may have died with the fault: reconnect as needed.
        connections.close_all()
        try:
            applied = StripeEvent.objects.filter(
                event_id__in=ids, status=StripeEvent.Status.APPLIED
            ).count()
        except OperationalError:
            time.sleep(1)
            continue
        if applied == len(ids):
            break
        try:
            event_requeue_stale(older_than_seconds=STALE_AFTER_S)
        except Exception as error:  # the broker may still be coming back
            print(f"{label}: sweep failed ({type(error).__name__}), retrying")
        time.sleep(3)
    return applied


def run_drill(ctx, *, name: str, fault, repair=None, repair_after_s: float = 10.0) -> dict:
    """Send RATE events/s for DURATION_S; call fault() at FAULT_AT_S, repair() later."""
    from bench.run import lifecycle_payloads, rows_for_events
    from billing.models import StripeEvent

    payloads = lifecycle_payloads(int(RATE * DURATION_S / 2), fake=ctx.fake)
    ids = [payload["id"] for payload in payloads]
    requests = [events.sign(payload, ctx.secret, ctx.webhook_path) for payload in payloads]

    def saboteur():
        time.sleep(FAULT_AT_S)
        print(f"{name}: fault")
        fault()
        if repair is not None:
            time.sleep(repair_after_s)
            print(f"{name}: repair")
            repair()

    thread = threading.Thread(target=saboteur, daemon=True)
    thread.start()
    result = loadgen.run_open(
        "127.0.0.1", ctx.port, requests, rate=RATE, time_limit=DURATION_S * 3, retries=RETRIES
    )
    thread.join()
    applied = _drain(ctx, ids, label=name)
    connections.close_all()
    stored = StripeEvent.objects.filter(event_id__in=ids).count()
    non_2xx = sum(count for status, count in result.statuses.items() if not 200 <= status < 300)
    return {
        "sent": len(ids),
        "acknowledged": result.ok,
        "non_2xx_answers_retried": non_2xx,
        "connection_errors_retried": result.errors,
        "stored": stored,
        "processed": applied,
        "lost": len(ids) - applied,
        **{k: v for k, v in rows_for_events(ids).items() if k == "applied_twice"},
        "p99_ms": result.summary()["p99_ms"],
    }


def drill_postgres_restart(ctx, report) -> None:
    report.section(
        "drill_postgres",
        "Fault drill: PostgreSQL restarted during load",
        run_drill(ctx, name="postgres restart", fault=restart_postgres),
    )


def drill_redis_stop(ctx, report) -> None:
    report.section(
        "drill_redis",
        "Fault drill: Redis (cache and Celery broker) stopped for 10 s during load",
        run_drill(ctx, name="redis stop", fault=stop_redis, repair=start_redis),
    )


def drill_worker_kill(ctx, report) -> None:
    def kill():
        ctx.worker.kill9()

    def restart():
        ctx.start_worker()

    report.section(
        "drill_worker",
        "Fault drill: Celery worker killed with SIGKILL mid-batch, restarted 10 s later",
        run_drill(ctx, name="worker SIGKILL", fault=kill, repair=restart),
    )


def drill_relay_kill(ctx, report) -> None:
    """The outbox relay SIGKILLed, events pile up unqueued; a new relay is SIGKILLed again
    while it drains that backlog (mid-batch: its claim rolls back after some of the batch was
    published), then a third one finishes. Lost: 0; applied twice: 0 (a task published twice
    finds its event applied)."""
    from billing.models import StripeEvent

    backlog_at_kill = []

    def kill():
        ctx.relay.kill9()

    def restart_and_kill_mid_batch():
        unqueued = StripeEvent.objects.filter(queued_at__isnull=True)
        waiting = unqueued.count()
        ctx.relay = procs.relay({**ctx.env, "BILLING_RELAY_BATCH_SIZE": "50"}, ctx.logdir)
        deadline = time.monotonic() + 30
        while unqueued.count() >= waiting and time.monotonic() < deadline:
            time.sleep(0.005)  # until its first batch has committed: it is draining now
        ctx.relay.kill9()
        backlog_at_kill.append(unqueued.count())
        connections.close_all()  # this thread's connection, not the driver's
        ctx.start_relay()

    figures = run_drill(ctx, name="relay SIGKILL", fault=kill, repair=restart_and_kill_mid_batch)
    figures["unqueued_when_killed_mid_batch"] = backlog_at_kill[0] if backlog_at_kill else None
    report.section(
        "drill_relay",
        "Fault drill: outbox relay killed with SIGKILL, then killed again mid-batch while "
        "draining the backlog",
        figures,
    )


def drill_stripe_api(ctx, report) -> None:
    """Stripe's API answers 500, then 429, for a minute in all while the mirror is on."""
    fake = ctx.fake
    # The mirror (dj-stripe's copy, the only part that calls Stripe's API) is on for this one.
    ctx.restart(BILLING_STRIPE_MIRROR_ENABLED="true")

    def outage():
        fake.set_mode("500")
        time.sleep(30)
        fake.set_mode("429")

    def recover():
        fake.set_mode("ok")

    figures = run_drill(
        ctx, name="stripe api 500/429", fault=outage, repair=recover, repair_after_s=30
    )
    report.section(
        "drill_stripe",
        "Fault drill: fake Stripe API answering 500 then 429 for a minute (mirror on)",
        figures,
    )


DRILLS = {
    "drill_postgres": drill_postgres_restart,
    "drill_redis": drill_redis_stop,
    "drill_worker": drill_worker_kill,
    "drill_relay": drill_relay_kill,
    "drill_stripe": drill_stripe_api,
}
