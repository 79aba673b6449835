"""`make bench`: Tollgate's benchmarks and fault drills, side by side with their baselines.

Runs inside .ci/with-services.sh (PostgreSQL with its durable defaults, and Redis), starts
gunicorn and a Celery worker itself, drives them from a load generator on loopback with a
bounded number of requests and a time limit, and writes docs/benchmarks.md.

    python -m bench.run [--only ingest,baselines,dupstorm,...] [--scale 1.0]
"""

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
# Measured as production runs: no DEBUG (no query log, no debug cursor wrappers).
os.environ["DEBUG"] = "false"

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bench import (  # noqa: E402
    drills,
    events,
    inprocess,
    loadgen,
    procs,
    profile,
    revoke_apply,
    scaleout,
)
from bench.report import Report  # noqa: E402
from bench.seal_lag import SealLagSampler  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_bench_" + "0" * 24
HOST = "127.0.0.1"


class Context:
    """The running stack: server port, webhook paths, child environment, log folder."""

    def __init__(self, scale: float, profile: bool = False, audit_rows: int = 0):
        self.scale = scale
        self.audit_rows = audit_rows  # audit_scale's trail size (0: 1M x scale)
        self.profile = profile
        self.logdir = Path(tempfile.mkdtemp(prefix="tollgate-bench-"))
        self.metrics_dir = self.logdir / "prometheus"
        self.metrics_dir.mkdir()
        self.env = dict(os.environ)
        self.env.update(
            PROMETHEUS_MULTIPROC_DIR=str(self.metrics_dir),
            BILLING_RETRY_BACKOFF_SECONDS="1",
            BILLING_RETRY_BACKOFF_MAX_SECONDS="5",
            LOG_LEVEL="WARNING",
            # A well-formed test key (answered by the local fake): stock dj-stripe parses it.
            STRIPE_SECRET_KEY="sk_test_51BenchFakeKey0000000000000000",
            # The mirror only runs in the Stripe API drill, which turns it on.
            BILLING_STRIPE_MIRROR_ENABLED="false",
            # Production's outbox: the request stores, the relay process publishes.
            BILLING_RELAY_INLINE="false",
        )
        self.port = procs.free_port()
        self.web = None
        self.worker = None
        self.relay = None
        self.webhook_path = ""
        self.djstripe_path = ""
        self.secret = SECRET
        self.root = ROOT
        self.fake = None

    def n(self, count: int) -> int:
        return max(10, int(count * self.scale))

    def start_web(self, workers: int = 4):
        self.web = procs.gunicorn(self.env, self.logdir, port=self.port, workers=workers)

    def start_worker(self, concurrency: int | None = None, nice: int = 0):
        concurrency = concurrency or int(os.environ.get("BENCH_WORKER_CONCURRENCY", "4"))
        self.worker = procs.celery_worker(self.env, self.logdir, concurrency=concurrency, nice=nice)

    def start_relay(self):
        self.relay = procs.relay(self.env, self.logdir)

    def restart(self, **env_overrides):
        """Restart gunicorn, the relay and the worker with other settings (the mirror on)."""
        self.stop()
        self.env.update(env_overrides)
        self.start_web()
        self.start_relay()
        self.start_worker()

    def worker_dead(self) -> bool:
        return self.worker is not None and self.worker.popen.poll() is not None

    def stop(self):
        for proc in (self.web, self.relay, self.worker):
            if proc is not None:
                proc.stop()


def setup_database(ctx: Context) -> None:
    from bench.views import BASELINE_TABLE_SQL
    from billing import services as billing_services

    print("migrating the benchmark database (dj-stripe's migrations take about 40 s)...")
    call_command("migrate", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(BASELINE_TABLE_SQL)
    endpoint = billing_services.webhook_endpoint_configure(secrets=[SECRET], tolerance=300, url="")
    # Stock dj-stripe verifies with the endpoint's own single secret.
    type(endpoint).objects.filter(pk=endpoint.pk).update(secret=SECRET)
    ctx.webhook_path = f"/stripe/webhook/{endpoint.djstripe_uuid}/"
    ctx.djstripe_path = f"/djstripe/webhook/{endpoint.djstripe_uuid}/"


def make_users(prefix: str, count: int) -> list[int]:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    User.objects.bulk_create(
        [User(username=f"{prefix}-{i}", password="!") for i in range(count)], batch_size=1000
    )
    return list(
        User.objects.filter(username__startswith=f"{prefix}-")
        .order_by("id")
        .values_list("id", flat=True)
    )


def lifecycle_payloads(count: int, *, fake=None) -> list[dict]:
    """`count` lifecycles (2 events each); handed to the fake Stripe API when given, so stock
    dj-stripe and our mirror find every object they fetch."""
    run = events.new_run_id()
    users = make_users(f"bench{run}", count)
    created = events.now()
    payloads = []
    for n, user_id in enumerate(users):
        payloads += events.subscription_lifecycle(user_id=user_id, n=n, run=run, created=created)
    if fake is not None:
        fake.record(payloads)
    return payloads


STALL_SECONDS = 90


def wait_applied(
    event_ids: list[str], *, timeout: float, label: str, ctx=None, mirrored: bool = False
) -> tuple[int, float]:
    """Poll the inbox until every event is applied (and mirrored, when asked); returns
    (done, when).

    Gives up after `timeout`, or when nothing progressed for STALL_SECONDS, or when the Celery
    worker died (its log is in the run's log folder).
    """
    from billing.models import StripeEvent

    total, applied = len(event_ids), 0
    deadline = time.monotonic() + timeout
    last_progress = time.monotonic()
    with tqdm(total=total, desc=f"{label}: applied", unit="ev", mininterval=1) as bar:
        while time.monotonic() < deadline:
            done = StripeEvent.objects.filter(
                event_id__in=event_ids, status=StripeEvent.Status.APPLIED
            )
            if mirrored:
                done = done.filter(mirror_status=StripeEvent.MirrorStatus.SYNCED)
            now = done.count()
            if now > applied:
                last_progress = time.monotonic()
            applied = now
            bar.update(applied - bar.n)
            if applied >= total:
                break
            if time.monotonic() - last_progress > STALL_SECONDS:
                print(f"{label}: no progress for {STALL_SECONDS}s, giving up")
                break
            if ctx is not None and ctx.worker_dead():
                raise RuntimeError(f"the Celery worker died: see {ctx.worker.log}")
            time.sleep(0.25)
    return applied, time.time()


def send_closed(ctx, requests, *, concurrency, label, retries=0, time_limit=120.0):
    print(f"{label}: {len(requests)} requests, {concurrency} connections")
    return loadgen.run_closed(
        HOST, ctx.port, requests, concurrency=concurrency, retries=retries, time_limit=time_limit
    )


def rows_for_events(event_ids: list[str]) -> dict:
    """Entitlement and audit rows produced by these events, and any applied twice."""
    from django.apps import apps
    from django.db.models import Count

    result = {}
    audit_model = apps.get_model("audit", "AuditEvent")
    audit_rows = audit_model.objects.filter(stripe_event_id__in=event_ids)
    result["audit_rows"] = audit_rows.count()
    per_event_action = (
        audit_rows.filter(action__startswith="billing.")
        .values("stripe_event_id", "action")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    result["applied_twice"] = per_event_action.count()
    entitlement = apps.get_model("entitlements", "Entitlement")
    result["entitlement_rows"] = entitlement.objects.filter(source="stripe").count()
    return result


# --- scenarios --------------------------------------------------------------------------------


def warm_up(ctx: Context, label: str, *, timeout: float = 120) -> None:
    """Every gunicorn worker and pool process past its first request (imports, connections)
    before anything is measured: one lifecycle per client, acknowledged and applied."""
    warm = lifecycle_payloads(CLIENTS)
    send_closed(ctx, [events.sign(p, SECRET, ctx.webhook_path) for p in warm],
                concurrency=CLIENTS, label=f"{label}: warm-up")  # fmt: skip
    wait_applied([p["id"] for p in warm], timeout=timeout, label=f"{label}: warm-up", ctx=ctx)


@contextlib.contextmanager
def sealer_running(ctx: Context, *, timeout: float = 120.0):
    """The long-running sealer beside web and worker, as in production, started and past its
    start-up before the block: it has sealed the rows a warm-up left (a sealer still importing
    Django when the load starts showed as 2 s of seal lag, bench/notes.md)."""
    from audit.sealing import seal_backlog

    if not seal_backlog().rows:
        raise RuntimeError("sealer_running: no row waits to show the sealer working (warm up)")
    sealer = procs.audit_sealer(ctx.env, ctx.logdir)
    try:
        deadline = time.monotonic() + timeout
        while seal_backlog().rows:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sealer sealed nothing in {timeout}s: {sealer.log}")
            time.sleep(0.2)
        yield
    finally:
        sealer.stop()


def bench_ingest(ctx: Context, report: Report) -> None:
    payloads = lifecycle_payloads(ctx.n(1500))
    ids = [p["id"] for p in payloads]
    requests = [events.sign(p, SECRET, ctx.webhook_path) for p in payloads]
    # `ingest` runs first: cold, it would meet processes `ingest_web_first` meets warm.
    warm_up(ctx, "ingest")
    with sealer_running(ctx), SealLagSampler() as seal_lag:  # the lag sampled throughout
        started = time.time()
        result = send_closed(ctx, requests, concurrency=CLIENTS, label="ingest")
        applied, finished = wait_applied(ids, timeout=600, label="ingest", ctx=ctx)
    rows = rows_for_events(ids)
    report.section(
        "ingest",
        f"Webhook ingest: distinct signed events, {CLIENTS} connections (closed loop)",
        {
            **result.summary(),
            "events": len(ids),
            "applied": applied,
            "end_to_end_per_s": round(applied / (finished - started), 1),
            **rows,
            **seal_lag.summary(),
        },
    )
    bench_ingest_web_first(ctx, report)
    # Open loop at issue 16's rates (100 and 150/s) and the older 200/s target, each drained
    # before the next, so that each rate meets a worker busy with its own events only.
    for rate, key in ((100, "ingest_offered_100"), (150, "ingest_offered_150"),
                      (200, "ingest_offered")):  # fmt: skip
        offered = lifecycle_payloads(ctx.n(1000) * rate // 200)  # 3 s of requests at scale 0.3
        offered_requests = [events.sign(p, SECRET, ctx.webhook_path) for p in offered]
        print(f"ingest at {rate}/s offered: {len(offered_requests)} requests")
        at_rate = loadgen.run_open(HOST, ctx.port, offered_requests, rate=float(rate),
                                   time_limit=60)  # fmt: skip
        wait_applied([p["id"] for p in offered], timeout=600, label="offered", ctx=ctx)
        report.section(
            key, f"Webhook ingest at {rate} events/s offered (open loop)", at_rate.summary()
        )


def bench_ingest_web_first(ctx: Context, report: Report) -> None:
    """The same closed loop, the worker restarted at a lower CPU priority than gunicorn
    (`nice`, BENCH_WORKER_NICE, 10 by default): is it the worker's share of the cores that
    holds acknowledgements back while it processes? (bench/notes.md: it was not.) Same payload
    shape, count, clients, sealer and server as `ingest`."""
    nice = int(os.environ.get("BENCH_WORKER_NICE", "10"))
    payloads = lifecycle_payloads(ctx.n(1500))
    ids = [p["id"] for p in payloads]
    requests = [events.sign(p, SECRET, ctx.webhook_path) for p in payloads]
    ctx.worker.stop()
    ctx.start_worker(nice=nice)
    try:
        # The restarted worker warmed up as `ingest`'s was; its rows show the sealer working.
        warm_up(ctx, "ingest, web first")
        with sealer_running(ctx):  # beside web and worker, as in `ingest`
            started = time.time()
            result = send_closed(ctx, requests, concurrency=CLIENTS, label="ingest, web first")
            applied, finished = wait_applied(ids, timeout=600, label="ingest, web first", ctx=ctx)
    finally:
        ctx.worker.stop()
        ctx.start_worker()
    report.section(
        "ingest_web_first",
        f"Webhook ingest, the worker at nice {nice} (web first): {CLIENTS} connections "
        "(closed loop)",
        {
            **result.summary(),
            "worker_nice": nice,
            "events": len(ids),
            "applied": applied,
            "end_to_end_per_s": round(applied / (finished - started), 1),
            "applied_twice": rows_for_events(ids).get("applied_twice", 0),
        },
    )


def bench_tiers(ctx: Context, report: Report) -> None:
    """Each tier alone: acknowledgements with the worker stopped (the web tier has the cores to
    itself), then the worker draining that backlog with the web tier idle."""
    # Every process past its start-up (imports, first connections) before anything is
    # measured: with `--only tiers` the relay was still starting when the acknowledgements
    # began, and its start-up counted as relay CPU per event.
    warm_up(ctx, "tiers")
    payloads = lifecycle_payloads(ctx.n(1500))
    ids = [p["id"] for p in payloads]
    requests = [events.sign(p, SECRET, ctx.webhook_path) for p in payloads]
    ctx.worker.stop()
    web_spy = relay_spy = None
    if ctx.profile:  # one gunicorn worker process, and the relay, while the web acknowledges
        web_spy = profile.record(profile.children(ctx.web.popen.pid)[0], 5, ctx.logdir / "web.spy")
        relay_spy = profile.record(ctx.relay.popen.pid, 5, ctx.logdir / "relay.spy")
    cpu_before_acks = profile.cpu_seconds_by_role()
    try:
        acks = send_closed(ctx, requests, concurrency=CLIENTS, label="acks, worker stopped")
    finally:
        cpu_acks = profile.cpu_ms_per_event(
            cpu_before_acks, profile.cpu_seconds_by_role(), len(requests)
        )
        ctx.start_worker()
    started = time.time()
    cpu_before_drain = profile.cpu_seconds_by_role()
    worker_spy = None
    if ctx.profile:  # one Celery pool process, while it drains
        time.sleep(3)  # past the worker's start-up
        pool = profile.children(ctx.worker.popen.pid)
        for _ in range(100):  # a loaded machine starts the pool later
            if pool:
                break
            time.sleep(0.3)
            pool = profile.children(ctx.worker.popen.pid)
        worker_spy = profile.record(pool[0], 10, ctx.logdir / "worker.spy")
    applied, finished = wait_applied(ids, timeout=600, label="drain", ctx=ctx)
    # The worker's start-up (Django, the pool's processes) is in this figure too.
    cpu_drain = profile.cpu_ms_per_event(
        cpu_before_drain, profile.cpu_seconds_by_role(), max(1, applied)
    )
    report.section(
        "tiers",
        "Each tier alone: acknowledgements with the worker stopped, then the worker draining them",
        {
            **{f"acks_{name}": value for name, value in acks.summary().items()},
            "drained": applied,
            # Includes the worker's start-up (about 2 s): a conservative figure.
            "worker_alone_per_s": round(applied / (finished - started), 1),
            **{f"acks_{name}": value for name, value in cpu_acks.items()},
            **{f"drain_{name}": value for name, value in cpu_drain.items()},
            **rows_for_events(ids),
        },
    )
    for spy, key, title in (
        (web_spy, "profile_web", "Profile: a gunicorn worker acknowledging (worker stopped)"),
        (relay_spy, "profile_relay", "Profile: the outbox relay while the web acknowledges"),
        (worker_spy, "profile_worker", "Profile: a Celery pool process draining"),
    ):
        if spy is not None:
            spy.wait()
            out = ctx.logdir / f"{key.removeprefix('profile_')}.spy"
            report.section(key, title + ", % of samples inside", profile.summary(out))


CLIENTS = 32  # every closed-loop comparison (ours, one-INSERT, stock dj-stripe) uses these


def bench_baselines(ctx: Context, report: Report) -> None:
    payloads = lifecycle_payloads(ctx.n(1500))
    bodies = [events.sign(p, SECRET, "/bench/one-insert") for p in payloads]
    one_insert = send_closed(ctx, bodies, concurrency=CLIENTS, label="one-INSERT view")
    report.section(
        "one_insert", "Baseline: minimal Django view, one INSERT per request", one_insert.summary()
    )
    # The same lifecycles as `ingest`, as many, with as many clients, on the same gunicorn; the
    # fake Stripe API knows every object stock dj-stripe fetches (checkout session, customer,
    # subscription, price, product...), so a non-2xx here is stock's own failure.
    stock = lifecycle_payloads(ctx.n(1500), fake=ctx.fake)
    stock_requests = [events.sign(p, SECRET, ctx.djstripe_path) for p in stock]
    stock_result = send_closed(
        ctx, stock_requests, concurrency=CLIENTS, label="stock dj-stripe", time_limit=600
    )
    report.section(
        "djstripe",
        "Baseline: stock dj-stripe webhook view (synchronous, Stripe API answered by the fake)",
        {**stock_result.summary(), "clients": CLIENTS},
    )
    report.section("pgbench", "Baseline: PostgreSQL single-row INSERT commits", pgbench_inserts())


def bench_mirror(ctx: Context, report: Report) -> None:
    """End to end with dj-stripe's mirror off, then on (every event also re-fetched from the
    fake Stripe API into dj-stripe's tables), same payloads and clients, in the same run."""
    figures = {}
    for label, enabled in (("off", "false"), ("on", "true")):
        ctx.restart(BILLING_STRIPE_MIRROR_ENABLED=enabled)
        payloads = lifecycle_payloads(ctx.n(1000), fake=ctx.fake)
        ids = [p["id"] for p in payloads]
        requests = [events.sign(p, SECRET, ctx.webhook_path) for p in payloads]
        cpu_before = profile.cpu_seconds_by_role()
        started = time.time()
        acks = send_closed(ctx, requests, concurrency=CLIENTS, label=f"mirror {label}")
        done, finished = wait_applied(
            ids, timeout=900, label=f"mirror {label}", ctx=ctx, mirrored=label == "on"
        )
        cpu = profile.cpu_ms_per_event(cpu_before, profile.cpu_seconds_by_role(), max(1, done))
        figures.update({
            f"mirror_{label}_events": len(ids),
            f"mirror_{label}_done": done,
            f"mirror_{label}_acks_error_rate": acks.error_rate,
            f"mirror_{label}_acks_per_s": acks.summary()["rate_per_s"],
            f"mirror_{label}_end_to_end_per_s": round(done / (finished - started), 1),
            **{f"mirror_{label}_{name}": value for name, value in cpu.items()},
        })  # fmt: skip
    off, on = figures["mirror_off_end_to_end_per_s"], figures["mirror_on_end_to_end_per_s"]
    figures["mirror_on_vs_off_end_to_end"] = round(on / off, 2) if off else None
    ctx.restart(BILLING_STRIPE_MIRROR_ENABLED="false")
    report.section(
        "mirror",
        "End to end with dj-stripe's mirror off and on (the fake Stripe API in its own process)",
        figures,
    )


def pgbench_inserts() -> dict:
    settings = connection.settings_dict
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_pgbench (id bigserial, v int)")
    script = Path(tempfile.mkstemp(suffix=".sql")[1])
    script.write_text("INSERT INTO bench_pgbench (v) VALUES (1);\n")
    figures = {}
    for clients in (1, 32):
        out = subprocess.run(
            [
                "pgbench", "-n", "-f", str(script), "-c", str(clients), "-j", "2", "-T", "10",
                "-h", settings["HOST"], "-p", str(settings["PORT"]), "-U", settings["USER"],
                settings["NAME"],
            ],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        tps = next(line for line in out.stdout.splitlines() if line.startswith("tps"))
        figures[f"commits_per_s_{clients}_clients"] = round(float(tps.split()[2]), 1)
    return figures


def bench_sql_per_event(ctx: Context, report: Report) -> None:
    """Statements and write transactions per new event on the acknowledgement path."""
    code = (
        "import json, bench.sql_count as s; print(json.dumps(s.measure("
        f"{ctx.webhook_path!r}, {SECRET!r}, 50)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=ctx.env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    report.section(
        "sql",
        "SQL per new event on the acknowledgement path",
        json.loads(out.stdout.splitlines()[-1]),
    )


def bench_dupstorm(ctx: Context, report: Report) -> None:
    payloads = lifecycle_payloads(50)  # 100 events
    ids = [p["id"] for p in payloads]
    requests = []
    for payload in payloads:
        signed = events.sign(payload, SECRET, ctx.webhook_path)
        requests += [signed] * 50
    result = send_closed(ctx, requests, concurrency=50, label="duplicate storm")
    applied, _ = wait_applied(ids, timeout=300, label="dupstorm", ctx=ctx)
    from billing.models import StripeEvent

    # One sender, events already applied: the Redis fast path answers without a write.
    known = [events.sign(payload, SECRET, ctx.webhook_path) for payload in payloads] * 2
    sequential = send_closed(ctx, known, concurrency=1, label="known duplicates")

    report.section(
        "dupstorm",
        "Duplicate storm: 50 concurrent copies of each of 100 events",
        {
            **result.summary(),
            "distinct_events": len(ids),
            "inbox_rows": StripeEvent.objects.filter(event_id__in=ids).count(),
            "applied": applied,
            **rows_for_events(ids),
            "known_duplicate_p50_ms": sequential.summary()["p50_ms"],
            "known_duplicate_p99_ms": sequential.summary()["p99_ms"],
        },
    )


SCENARIOS = {
    "ingest": bench_ingest,
    "tiers": bench_tiers,
    "baselines": bench_baselines,
    "mirror": bench_mirror,
    "sql": bench_sql_per_event,
    "dupstorm": bench_dupstorm,
    **inprocess.SCENARIOS,
    **revoke_apply.SCENARIOS,
    **scaleout.SCENARIOS,
    **drills.DRILLS,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated scenarios")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument(
        "--profile", action="store_true", help="py-spy profiles in the tiers scenario"
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the Markdown from the last run's JSON and bench/notes.md, measure nothing",
    )
    parser.add_argument(
        "--audit-rows",
        type=int,
        default=0,
        help="audit_scale: rows in the trail (default 1M x scale; e.g. 10000000 for the "
        "inclusion proof at 10M rows)",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        report = Report(command="")
        report.merge_previous(Path(args.out))
        report.write(Path(args.out), machine=machine_description())
        return 0
    chosen = [name for name in SCENARIOS if not args.only or name in args.only.split(",")]
    ctx = Context(args.scale, profile=args.profile, audit_rows=args.audit_rows)
    report = Report(command=" ".join(["make bench", *(["BENCH_ARGS='" + " ".join(
        sys.argv[1:]) + "'"] if sys.argv[1:] else [])]))  # fmt: skip
    setup_database(ctx)
    ctx.fake = procs.FakeStripeProc(ctx.env, ctx.logdir, port=procs.free_port()).start()
    ctx.env["STRIPE_API_HOST"] = ctx.fake.url
    try:
        ctx.start_web()
        ctx.start_relay()
        ctx.start_worker()
        for name in chosen:
            print(f"== {name}")
            SCENARIOS[name](ctx, report)
    finally:
        ctx.stop()
        ctx.fake.stop()
        # Written even when a scenario failed: the scenarios that ran keep their figures (a
        # 40-minute run once lost all of them to its last scenario's error).
        if args.only:
            report.merge_previous(Path(args.out))
        report.write(Path(args.out), machine=machine_description())
    if Path(args.out).resolve() == (ROOT / "docs" / "benchmarks.md").resolve():
        # The capacity model in docs/deploy.md quotes the same run's figures.
        scaleout.write_capacity(report, ROOT / "docs" / "deploy.md")
    print(f"wrote {args.out}; logs in {ctx.logdir}")
    return 0


def machine_description() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


if __name__ == "__main__":
    sys.exit(main())
