"""CPU of acknowledging one webhook in the web process: our view (verify, parse, one INSERT of
the delivery and the inbox row) against the one-INSERT view, same payloads, same process.

    bash .ci/with-services.sh .venv/bin/python -m bench.ack_cpu [REQUESTS] [--rounds 3]
        [--log-level WARNING] [--profile]

Each round signs REQUESTS fresh events (the bench's lifecycles: a 3.6 KB checkout, then a
4.7 KB subscription) and posts them through Django's test client (the middleware
stack, no HTTP server), first to our endpoint, then the same bodies to /bench/one-insert:
process CPU (time.process_time) and wall time per request, and the PostgreSQL server's CPU per
request (its backends' /proc times, bench/profile.py). As the bench's servers run: the relay
not inline, Celery not eager, DEBUG off, LOG_LEVEL=WARNING unless --log-level says otherwise
(production logs at INFO). --profile adds a cProfile (in process CPU time) of one more round
of our view.
"""

import argparse
import cProfile
import os
import pstats
import sys
import time

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ["BILLING_RELAY_INLINE"] = "false"
os.environ["DEBUG"] = "false"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("requests", nargs="?", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--profile", action="store_true", help="cProfile one more round")
    return parser.parse_args()


ARGS = _arguments()
os.environ["LOG_LEVEL"] = ARGS.log_level

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402

from bench import events, profile  # noqa: E402
from bench.loadgen import Request  # noqa: E402
from bench.run import SECRET, Context, lifecycle_payloads, setup_database  # noqa: E402

ONE_INSERT_PATH = "/bench/one-insert"


def _postgres_cpu() -> float:
    return sum(s for (role, _), s in profile.cpu_seconds_by_role().items() if role == "postgres")


def _signed(path: str, count: int) -> list[Request]:
    return [events.sign(payload, SECRET, path) for payload in lifecycle_payloads(count // 2)]


def _post_all(client: Client, requests: list[Request]) -> None:
    for request in requests:
        response = client.post(
            request.path, request.body, content_type="application/json",
            HTTP_STRIPE_SIGNATURE=request.headers["Stripe-Signature"],
        )  # fmt: skip
        if response.status_code != 200:
            raise RuntimeError(f"{request.path} answered {response.status_code}")


def measure(label: str, client: Client, requests: list[Request]) -> None:
    postgres = _postgres_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    _post_all(client, requests)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    postgres = _postgres_cpu() - postgres
    n = len(requests)
    print(
        f"{label:>10}: {n} requests, python {cpu / n * 1000:.3f} ms/request, "
        f"postgres {postgres / n * 1000:.3f} ms/request, wall {wall / n * 1000:.3f} ms/request",
        flush=True,
    )


def main() -> None:
    ctx = Context(scale=1.0)
    setup_database(ctx)
    client = Client()
    # Warm-up: connections, caches, imports.
    _post_all(client, _signed(ctx.webhook_path, 100))
    _post_all(client, _signed(ONE_INSERT_PATH, 100))
    for round_number in range(1, ARGS.rounds + 1):
        ours = _signed(ctx.webhook_path, ARGS.requests)
        # The same bodies: only the signature's path differs, and the baseline ignores it.
        baseline = [Request(ONE_INSERT_PATH, r.body, r.headers) for r in ours]
        print(f"round {round_number} (LOG_LEVEL={ARGS.log_level})")
        measure("ours", client, ours)
        measure("one-insert", client, baseline)
    if ARGS.profile:
        requests = _signed(ctx.webhook_path, ARGS.requests)
        # Timed in process CPU, not wall time: waiting for PostgreSQL is not the view's work.
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        _post_all(client, requests)
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
