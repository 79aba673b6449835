"""Benchmarks that run inside the driver process: entitlement checks and the audit trail."""

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import Client
from tqdm import tqdm

CHECKS = 50_000


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds else 0.0


def bench_has_feature(ctx, report) -> None:
    from config.context import SYSTEM
    from entitlements import access
    from entitlements.models import Entitlement
    from entitlements.services import entitlement_grant_manual

    user = get_user_model().objects.create_user(username=f"bench-checks-{time.time_ns()}")
    entitlement_grant_manual(
        user=user, granted_by=None, actor=SYSTEM, reason="benchmark", plan_code="premium"
    )
    keys = ["signals_basic", "signals_premium", "copy_trading"]

    access.forget_request_memo(user)
    started = time.perf_counter()
    for i in range(CHECKS):  # one request doing many checks: the memo is warm after the first
        access.has_feature(user, keys[i % 3])
    warm = _rate(CHECKS, time.perf_counter() - started)

    redis_checks = CHECKS // 10
    started = time.perf_counter()
    for i in range(redis_checks):  # a new request each time: Redis answers, no query
        access.forget_request_memo(user)
        access.has_feature(user, keys[i % 3])
    redis_only = _rate(redis_checks, time.perf_counter() - started)

    naive_checks = CHECKS // 10
    started = time.perf_counter()
    for i in range(naive_checks):  # the naive way: one query per check
        now = datetime.now(UTC)
        Entitlement.objects.filter(
            user=user, feature__lookup_key=keys[i % 3], revoked_at__isnull=True,
            starts_at__lte=now, expires_at__gt=now,
        ).exists()  # fmt: skip
    naive = _rate(naive_checks, time.perf_counter() - started)
    report.section(
        "has_feature",
        "Entitlement checks: has_feature calls per second",
        {
            "warm_request_cache_per_s": warm,
            "redis_only_per_s": redis_only,
            "naive_one_query_per_check_per_s": naive,
            "warm_vs_naive": round(warm / naive, 1) if naive else None,
            "redis_vs_naive": round(redis_only / naive, 1) if naive else None,
        },
    )


def _audit_writer(count: int, errors: list) -> None:
    from audit.services import Target, audit_event_record
    from config.context import Actor

    try:
        for i in range(count):
            audit_event_record(
                action="billing.payment.completed",
                actor=Actor(kind="stripe"),
                target=Target("invoice", f"in_bench{i}", "bench invoice"),
                meta={"amount": 1900, "currency": "usd"},
            )
    except Exception as error:  # reported, not swallowed
        errors.append(repr(error))
    finally:
        connections.close_all()


# dj-stripe's system check refuses STRIPE_API_HOST (the fake Stripe API) with DEBUG off; the
# benchmark's own commands skip the checks, which `manage.py check` covers elsewhere.
VERIFY = [sys.executable, "manage.py", "audit_verify", "--skip-checks"]


def bench_audit_inserts(ctx, report) -> None:
    from audit.sealing import audit_seal_pending

    audit_seal_pending()  # rows left by earlier sections are not this section's work
    figures = {}
    for writers in (1, 4, 16):
        # 16,000 rows a round: enough that a batch of the sealer (AUDIT_SEAL_BATCH_SIZE) is
        # measured at its working size, not only the per-call overhead of a small backlog.
        per_writer = max(25, 16_000 // writers)
        errors: list = []
        threads = [
            threading.Thread(target=_audit_writer, args=(per_writer, errors))
            for _ in range(writers)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        if errors:
            raise RuntimeError(f"audit writers failed: {errors[:3]}")
        figures[f"inserts_per_s_{writers}_writers"] = _rate(writers * per_writer, elapsed)
        # Writers only append; the sealer chains what they committed (one leader, batches).
        started = time.perf_counter()
        sealed = audit_seal_pending()
        figures[f"seal_rows_per_s_after_{writers}_writers"] = _rate(
            sealed, time.perf_counter() - started
        )
    result = subprocess.run(VERIFY, env=ctx.env, capture_output=True, text=True, cwd=ctx.root)
    figures["chain_intact_after"] = result.returncode == 0
    if result.returncode != 0:
        figures["audit_verify_said"] = (result.stdout + result.stderr).strip().splitlines()[-1:]
    report.section("audit_inserts", "Audit trail: hash-chained inserts per second", figures)


def _fill_valid_chain(total: int) -> None:
    """Append rows with a valid chain, computed like the writer does, loaded with COPY."""
    from audit import chain
    from audit.sealing import audit_seal_pending, sealed_head

    audit_seal_pending()  # the chain continues from the newest sealed row
    sequence, prev = sealed_head()
    start = datetime.now(UTC) - timedelta(days=400)
    columns = ("sequence", "occurred_at", "actor_type", "actor_id", "actor_name", "actor_role",
               "action", "target_type", "target_id", "target_repr", "outcome",
               "stripe_event_id", "request_id", "ip", "user_agent", "reason", "meta",
               "prev_hash", "hash")  # fmt: skip
    meta = '{"amount": 1900, "currency": "usd"}'
    with connection.cursor() as cursor, tqdm(total=total, desc="audit rows", unit="row") as bar:
        raw = cursor.connection
        batch = 100_000
        for offset in range(0, total, batch):
            with raw.cursor().copy(
                f"COPY audit_auditevent ({', '.join(columns)}) FROM STDIN"
            ) as copy:
                for _ in range(min(batch, total - offset)):
                    sequence += 1
                    failed = sequence % 10 == 0
                    row = {
                        "action": "billing.payment.failed" if failed else
                        "billing.payment.completed",
                        "actor_id": "", "actor_name": "stripe", "actor_role": "SYSTEM",
                        "actor_type": "stripe", "ip": "", "meta": meta,
                        "occurred_at": start + timedelta(seconds=sequence * 10),
                        "outcome": "failure" if failed else "success", "reason": "",
                        "request_id": "", "sequence": sequence,
                        "stripe_event_id": f"evt_bench{sequence}", "target_id": f"in_{sequence}",
                        "target_repr": f"invoice in_{sequence}", "target_type": "invoice",
                        "user_agent": "",
                    }  # fmt: skip
                    values = tuple(row[name] for name in chain.CONTENT_FIELDS)
                    digest = chain.link_hash(prev, values)
                    copy.write_row([row.get(c) for c in columns[:-2]] + [prev, digest])
                    prev = digest
            bar.update(min(batch, total - offset))
        cursor.execute(
            "INSERT INTO audit_chainhead (id, sequence, hash) VALUES (1, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET sequence = EXCLUDED.sequence, hash = EXCLUDED.hash",
            [sequence, prev],
        )
        cursor.execute("ANALYZE audit_auditevent")


def _audit_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(sequence) FROM audit_auditevent")
        return cursor.fetchone()[0] or 0


def _admin_timings(label: str) -> dict:
    """Server time of the compliance changelist against a plain ModelAdmin, same table."""
    user = get_user_model().objects.filter(is_superuser=True, username="bench-admin").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench-admin", "", "bench-pass-1234")
    client = Client()
    client.force_login(user)
    pages = {
        "first_page": {},
        "filtered_page": {"action": "billing.payment.failed", "outcome__exact": "failure"},
    }
    figures = {}
    for name, params in pages.items():
        for site, url in (("tollgate", "/admin/audit/auditevent/"),
                          ("plain", "/bench/plain-admin/audit/auditevent/")):  # fmt: skip
            query = params if site == "tollgate" or not params else {
                "action__exact": params["action"], "outcome__exact": params["outcome__exact"]
            }  # fmt: skip
            client.get(url, query)  # warm caches and connections
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                response = client.get(url, query)
                best = min(best, time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"{site} {name}: HTTP {response.status_code}")
            figures[f"{label}_{name}_{site}_ms"] = round(best * 1000, 1)
        plain = figures[f"{label}_{name}_plain_ms"]
        ours = figures[f"{label}_{name}_tollgate_ms"]
        figures[f"{label}_{name}_speedup"] = round(plain / ours, 1) if ours else None
    return figures


def _proof_timings(rows: int) -> dict:
    """Merkle inclusion proofs over the whole trail (the stored tree is built first if the
    rows were loaded in bulk): median time per proof, never a rehash of the rows."""
    from audit.tree import inclusion_proof, tree_ensure

    started = time.perf_counter()
    tree_ensure(rows)
    built = time.perf_counter() - started
    times = []
    for sequence in range(1, rows + 1, max(1, rows // 50)):
        started = time.perf_counter()
        inclusion_proof(sequence, rows)
        times.append(time.perf_counter() - started)
    times.sort()
    return {
        "merkle_tree_build_s": round(built, 1),
        f"{_size_label(rows)}_inclusion_proof_median_ms": round(times[len(times) // 2] * 1000, 2),
    }


def _size_label(rows: int) -> str:
    # The tables hold a few rows more than the fill (earlier scenarios): name the scale.
    return f"{round(rows / 1e6)}M_rows" if rows >= 1_000_000 else f"{round(rows / 1e3)}k_rows"


def _evidence_timings(ctx, rows: int) -> dict:
    """An evidence pack of the first `rows` rows (a checkpoint signed at that size), exported
    with `audit_export --evidence`, then verified offline by the verifier shipped in it, each
    in its own process, as an auditor would run it. The pack is deleted afterwards."""
    import shutil

    from audit.services import audit_checkpoint_create

    audit_checkpoint_create(at=rows)
    pack = ctx.logdir / "evidence"
    export = [*VERIFY[:2], "audit_export", "--skip-checks", "--evidence", str(pack),
              "--to-sequence", str(rows)]  # fmt: skip
    started = time.perf_counter()
    exported = subprocess.run(export, env=ctx.env, capture_output=True, text=True, cwd=ctx.root)
    export_s = time.perf_counter() - started
    figures = {
        "evidence_rows": rows,
        "evidence_export_exit_code": exported.returncode,
        "evidence_export_s": round(export_s, 1),
    }
    if exported.returncode == 0:
        size = sum(path.stat().st_size for path in pack.iterdir())
        started = time.perf_counter()
        verified = subprocess.run(
            [sys.executable, str(pack / "verify_evidence.py"), str(pack)],
            capture_output=True, text=True, cwd=ctx.logdir,
        )  # fmt: skip
        figures.update({
            "evidence_pack_mb": round(size / 1e6, 1),
            "evidence_verify_exit_code": verified.returncode,
            "evidence_verify_offline_s": round(time.perf_counter() - started, 1),
        })  # fmt: skip
        if verified.returncode != 0:
            figures["evidence_verify_said"] = (verified.stdout + verified.stderr).splitlines()[-3:]
    else:
        figures["evidence_export_said"] = exported.stderr.strip().splitlines()[-3:]
    shutil.rmtree(pack, ignore_errors=True)
    return figures


def bench_audit_scale(ctx, report) -> None:
    figures = {}
    target = ctx.audit_rows or int(1_000_000 * ctx.scale)
    missing = target - _audit_rows()
    if missing > 0:
        _fill_valid_chain(missing)
    rows = _audit_rows()
    started = time.perf_counter()
    result = subprocess.run(VERIFY, env=ctx.env, capture_output=True, text=True, cwd=ctx.root)
    elapsed = time.perf_counter() - started
    figures["rows"] = rows
    figures["audit_verify_exit_code"] = result.returncode
    figures["audit_verify_rows_per_s"] = _rate(rows, elapsed)
    figures.update(_admin_timings(_size_label(rows)))
    figures.update(_proof_timings(rows))
    # The pack stays at the target's 1M rows (x scale) when the trail is made larger.
    figures.update(_evidence_timings(ctx, min(rows, int(1_000_000 * ctx.scale))))
    big = int(5_000_000 * ctx.scale)
    if big > rows:
        _fill_valid_chain(big - rows)
        figures.update(_admin_timings(_size_label(_audit_rows())))
    report.section(
        "audit_scale",
        "Audit trail at scale: verify, the admin changelist, proofs and an evidence pack",
        figures,
    )


SCENARIOS = {
    "has_feature": bench_has_feature,
    "audit_inserts": bench_audit_inserts,
    "audit_scale": bench_audit_scale,
}
