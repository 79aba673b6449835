"""Count SQL statements and write transactions per new event on the acknowledgement path.

Runs in its own process (bench/run.py starts it) with Celery's broker set to memory://, so the
only database work measured is the web request's own: the processing task never runs here.
"""

import os

os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench import events  # noqa: E402
from bench.run import lifecycle_payloads  # noqa: E402


def measure(path: str, secret: str, count: int) -> dict:
    payloads = lifecycle_payloads(count // 2)
    requests = [events.sign(p, secret, path) for p in payloads]
    client = Client()
    client.post(requests[0].path, requests[0].body, content_type="application/json",
                HTTP_STRIPE_SIGNATURE=requests[0].headers["Stripe-Signature"])  # fmt: skip
    statuses = {}
    with CaptureQueriesContext(connection) as queries:
        for request in requests[1:]:
            response = client.post(
                request.path, request.body, content_type="application/json",
                HTTP_STRIPE_SIGNATURE=request.headers["Stripe-Signature"],
            )  # fmt: skip
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    measured = len(requests) - 1
    kinds = {}
    for query in queries.captured_queries:
        verb = query["sql"].split(None, 1)[0].upper()
        kinds[verb] = kinds.get(verb, 0) + 1
    return {
        "events": measured,
        "statuses": statuses,
        "statements_per_event": round(len(queries.captured_queries) / measured, 2),
        "statements_by_kind": {k: round(v / measured, 2) for k, v in sorted(kinds.items())},
        "commits_per_event": round(kinds.get("COMMIT", 0) / measured, 2),
        "statements_per_event_without_begin_commit": round(
            (len(queries.captured_queries) - kinds.get("BEGIN", 0) - kinds.get("COMMIT", 0))
            / measured,
            2,
        ),
    }
