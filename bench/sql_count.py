"""Count SQL statements and write transactions per new event on the acknowledgement path.

Runs in its own process (bench/run.py starts it) with Celery's broker set to memory://, so the
only database work measured is the web request's own: the processing task never runs here.
The first delivery is not measured (it reads the endpoint's secrets, which the process then
keeps for BILLING_WEBHOOK_ENDPOINT_CACHE_SECONDS). Django's connection health check (`SELECT 1`
on a reused connection, once per request) runs on the raw connection and is not counted; every
Django view on this stack pays it, the one-INSERT baseline included.
"""

import os

os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from bench import events  # noqa: E402
from bench.run import lifecycle_payloads  # noqa: E402


def measure(path: str, secret: str, count: int) -> dict:
    payloads = lifecycle_payloads(count // 2)
    requests = [events.sign(p, secret, path) for p in payloads]
    client = Client()
    client.post(requests[0].path, requests[0].body, content_type="application/json",
                HTTP_STRIPE_SIGNATURE=requests[0].headers["Stripe-Signature"])  # fmt: skip
    statuses = {}
    statements = []  # (verb, ran in autocommit)

    def record(execute, sql, params, many, context):
        autocommit = context["connection"].get_autocommit()
        statements.append((sql.split(None, 1)[0].upper(), autocommit))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        for request in requests[1:]:
            response = client.post(
                request.path, request.body, content_type="application/json",
                HTTP_STRIPE_SIGNATURE=request.headers["Stripe-Signature"],
            )  # fmt: skip
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    measured = len(requests) - 1
    kinds = {}
    for verb, _ in statements:
        kinds[verb] = kinds.get(verb, 0) + 1
    # A write in autocommit is its own transaction, committed by the statement itself.
    autocommitted_writes = sum(
        1 for verb, autocommit in statements if autocommit and verb in {"INSERT", "UPDATE",
                                                                         "DELETE", "WITH"}
    )  # fmt: skip
    transaction_control = kinds.get("BEGIN", 0) + kinds.get("COMMIT", 0)
    return {
        "events": measured,
        "statuses": statuses,
        "statements_per_event": round(len(statements) / measured, 2),
        "statements_by_kind": {k: round(v / measured, 2) for k, v in sorted(kinds.items())},
        "commits_per_event": round((kinds.get("COMMIT", 0) + autocommitted_writes) / measured, 2),
        "statements_per_event_without_begin_commit": round(
            (len(statements) - transaction_control) / measured, 2
        ),
    }
