"""billing.db's insert of a delivery's trigger row and its inbox row, on both code paths."""

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djstripe.models import WebhookEventTrigger

from billing.db import insert_with_parent_ignoring_conflict
from billing.models import StripeEvent
from tests.billing.conftest import customer_event
from tests.servers import require_postgres

pytestmark = pytest.mark.django_db


def pair(event_id: str) -> tuple[WebhookEventTrigger, StripeEvent]:
    payload = customer_event(event_id=event_id)
    trigger = WebhookEventTrigger(headers={}, body="{}", remote_ip="127.0.0.1", valid=True)
    row = StripeEvent(
        event_id=event_id,
        type=payload["type"],
        created=payload["created"],
        customer_id="cus_t1",
        payload=payload,
    )
    return trigger, row


def insert(event_id: str):
    trigger, row = pair(event_id)
    new_id = insert_with_parent_ignoring_conflict(
        trigger, row, parent_field="trigger_id", conflict_fields=["event_id"]
    )
    return new_id, row


@pytest.mark.parametrize("vendor", ["postgresql", "other"])
def test_first_insert_links_the_rows_and_a_duplicate_keeps_only_its_trigger(vendor, monkeypatch):
    if vendor == "other":
        # The portable path (SQLite under `make run`): two statements in a transaction.
        monkeypatch.setattr(connection, "vendor", "sqlite")
    new_id, row = insert("evt_db_pair")
    stored = StripeEvent.objects.get(event_id="evt_db_pair")
    assert new_id == stored.pk == row.pk
    assert WebhookEventTrigger.objects.get(pk=stored.trigger_id).remote_ip == "127.0.0.1"
    assert row.trigger_id == stored.trigger_id

    again, _ = insert("evt_db_pair")
    assert again is None
    assert StripeEvent.objects.filter(event_id="evt_db_pair").count() == 1
    assert WebhookEventTrigger.objects.count() == 2  # every delivery that reached the database


def test_on_postgresql_both_rows_are_one_statement():
    require_postgres(connection)  # the single-statement form is PostgreSQL's
    with CaptureQueriesContext(connection) as queries:
        insert("evt_db_single")
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("WITH parent AS (INSERT INTO")


def test_on_postgresql_the_values_travel_apart_from_the_statement():
    """Server-side binding: the body is not quoted into the SQL text in Python (issue 16)."""
    require_postgres(connection)
    cursors = []

    def record(execute, sql, params, many, context):
        cursors.append(context["cursor"].cursor)
        return execute(sql, params, many, context)

    trigger, row = pair("evt_db_bound")
    row.payload["data"]["object"]["name"] = "O'Brien; DROP TABLE x; -- \\ $1"
    with connection.execute_wrapper(record):
        insert_with_parent_ignoring_conflict(
            trigger, row, parent_field="trigger_id", conflict_fields=["event_id"]
        )
    assert len(cursors) == 1
    assert not isinstance(cursors[0], psycopg.ClientCursor)
    assert isinstance(cursors[0], psycopg.Cursor)
    stored = StripeEvent.objects.get(event_id="evt_db_bound")
    assert stored.payload["data"]["object"]["name"] == "O'Brien; DROP TABLE x; -- \\ $1"
