"""CPU of applying stored events in the worker's process: one at a time (apply_event's path)
against batches (apply_events' path), on the same lifecycles, same database, one process.

    bash .ci/with-services.sh .venv/bin/python -m bench.apply_cpu [LIFECYCLES] [BATCH_SIZE]

Each round stores LIFECYCLES fresh lifecycles (2 events each: a checkout, then the
subscription granting a three-feature plan with its audit rows) and applies them: process CPU
(time.process_time) and the PostgreSQL server's CPU (its backends' /proc times, bench/profile.py)
per event. No Celery: what is compared is the work each path does, not the broker.
"""

import os
import sys
import time

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from bench import profile  # noqa: E402
from bench.run import lifecycle_payloads  # noqa: E402


def store(count: int) -> list[tuple[str, str]]:
    from billing import stripe_events
    from billing.models import StripeEvent

    items = []
    for payload in lifecycle_payloads(count):
        key = stripe_events.parse(payload).customer_key
        StripeEvent.objects.create(
            event_id=payload["id"], type=payload["type"], created=payload["created"],
            livemode=False, customer_id=key, payload=payload,
            mirror_status=StripeEvent.MirrorStatus.DISABLED,
        )  # fmt: skip
        items.append((payload["id"], key))
    return items


def _postgres_cpu() -> float:
    return sum(s for (role, _), s in profile.cpu_seconds_by_role().items() if role == "postgres")


def measure(label: str, items: list[tuple[str, str]], batch_size: int) -> None:
    from billing import batches, services

    groups, singles = batches.apply_batches_plan(items, batch_size=batch_size)
    postgres_before = _postgres_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    for group in groups:
        batches.events_apply_batch(items=group)
    for event_id, customer_id in singles:
        services.event_apply(event_id=event_id, customer_id=customer_id)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    postgres = _postgres_cpu() - postgres_before
    n = len(items)
    print(
        f"{label:>10}: {n} events, python {cpu / n * 1000:.2f} ms/event, "
        f"postgres {postgres / n * 1000:.2f} ms/event, wall {wall / n * 1000:.2f} ms/event"
    )


def main() -> None:
    lifecycles = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    batch_size = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    call_command("migrate", interactive=False, verbosity=0)
    connection.ensure_connection()
    measure("warm-up", store(50), 1)
    for _ in range(3):
        measure("one each", store(lifecycles), 1)
        measure(f"batch {batch_size}", store(lifecycles), batch_size)


if __name__ == "__main__":
    main()
