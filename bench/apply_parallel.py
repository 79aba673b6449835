"""The batched apply path in 1 and 2 processes at once, without Celery: does it scale out?

    bash .ci/with-services.sh .venv/bin/python -m bench.apply_parallel [LIFECYCLES] [ROUNDS]

Each round stores LIFECYCLES fresh lifecycles (2 events each, as bench/apply_cpu.py) and
applies them in batches of 50 (billing/batches.py), first in one process, then split between
two processes (forked, each with its own connection). It prints events/s, each process's CPU
per event, and what PostgreSQL's backends were doing meanwhile (pg_stat_activity sampled every
5 ms: lock waits would show here, a backend waiting for its client shows as ClientRead).
Run it with nothing else on the machine: on 2 cores, a test run beside it takes one of them.
"""

import collections
import multiprocessing
import os
import sys
import time

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

from bench.apply_cpu import store  # noqa: E402


def _apply(groups: list) -> tuple[float, float]:
    from billing import batches

    connections.close_all()  # a forked process opens its own connection
    cpu, wall = time.process_time(), time.perf_counter()
    for group in groups:
        batches.events_apply_batch(items=group)
    return time.process_time() - cpu, time.perf_counter() - wall


def _backend_states(cursor) -> list[tuple]:
    cursor.execute(
        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE backend_type = "
        "'client backend' AND pid <> pg_backend_pid() AND datname = current_database()"
    )
    return cursor.fetchall()


def measure(processes: int, lifecycles: int) -> None:
    from billing import batches

    items = store(lifecycles)
    groups, singles = batches.apply_batches_plan(items, batch_size=50)
    assert not singles, "every bench event names its customer"
    shares = [groups[i::processes] for i in range(processes)]
    connections.close_all()
    waits: collections.Counter = collections.Counter()
    samples = 0
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        result = pool.map_async(_apply, shares)
        started = time.perf_counter()
        with connection.cursor() as cursor:
            while not result.ready():
                waits.update(_backend_states(cursor))
                samples += 1
                time.sleep(0.005)
        wall = time.perf_counter() - started
        cpu = [round(seconds / (len(items) / processes) * 1000, 2) for seconds, _ in result.get()]
    print(f"{processes} process(es): {len(items)} events, {len(items) / wall:.0f} events/s, "
          f"CPU ms per event in each process {cpu}")  # fmt: skip
    for (state, kind, event), count in waits.most_common(4):
        print(f"    backends {state} {kind or ''} {event or ''}: {count / max(1, samples):.2f}")


def main() -> None:
    lifecycles = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    call_command("migrate", interactive=False, verbosity=0)
    store(20)
    for _ in range(rounds):
        measure(1, lifecycles)
        measure(2, lifecycles)


if __name__ == "__main__":
    main()
