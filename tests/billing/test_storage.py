"""What an acknowledgement stores: the inbox's jsonb is the delivered event, the trigger row's
body the delivered bytes, both compressed with lz4 on PostgreSQL (issue 16, point 5)."""

import json

import pytest
from django.db import connection
from djstripe.models import WebhookEventTrigger
from psycopg.types.json import Jsonb

from billing.models import StripeEvent
from tests.billing.conftest import customer_event
from tests.billing.test_webhook_view import assert_problem
from tests.servers import require_postgres
from tests.stripe_fixtures import signed

pytestmark = pytest.mark.django_db

# What a dump and a parse could disagree on: escapes, characters beyond ASCII and beyond the
# BMP, numbers of every kind.
AWKWARD = {
    "quote": 'say "hi" \\ back\\slash',
    "control": "tab\there\nnewline \u001f unit separator",
    "accents": "café Zürich ﬁ",
    "astral": "𝄞 and 😀",
    "escaped_in_body": "\u00e9",
    "numbers": [0, -0.0, 0.1, 1e-7, 1.5e10, 2**63, -(2**70), 123456789.123456789],
    "nested": {"empty_list": [], "empty_object": {}, "null": None, "true": True},
}


def post_body(client, endpoint, body: str):
    body, header = signed(body, endpoint.secret)
    return client.post(
        endpoint.path, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )


def awkward_event() -> tuple[dict, str]:
    payload = customer_event()
    payload["data"]["object"]["metadata"] = AWKWARD
    # ensure_ascii (as Stripe's bodies and the stripe SDK escape) for half, raw UTF-8 for half.
    body = json.dumps(payload).replace(
        json.dumps(AWKWARD["astral"]), json.dumps(AWKWARD["astral"], ensure_ascii=False)
    )
    return payload, body


def test_the_stored_jsonb_is_the_delivered_event(client, endpoint):
    payload, body = awkward_event()
    assert post_body(client, endpoint, body).status_code == 200
    row = StripeEvent.objects.get(event_id=payload["id"])
    assert row.payload == json.loads(body)
    trigger = WebhookEventTrigger.objects.get(pk=row.trigger_id)
    assert trigger.body == body  # the delivery's exact text: the evidence of what was signed
    if connection.vendor == "postgresql":
        # PostgreSQL's own reading of the delivered body equals what it stored.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT payload = %s::jsonb FROM billing_stripeevent WHERE event_id = %s",
                [body, payload["id"]],
            )
            assert cursor.fetchone() == (True,)


def test_an_event_without_livemode_is_stored_with_livemode_false(client, endpoint):
    payload = customer_event()
    del payload["livemode"]
    assert post_body(client, endpoint, json.dumps(payload)).status_code == 200
    row = StripeEvent.objects.get(event_id=payload["id"])
    assert row.livemode is False
    assert row.payload == {**payload, "livemode": False}


def test_the_inbox_jsonb_is_sent_as_the_text_the_view_checked(client, endpoint):
    """One dump per acknowledgement: the payload reaches PostgreSQL as the JSON text that the
    view's storability check produced, not as the event dumped again by the JSON field."""
    require_postgres(connection)
    seen = []

    def record(execute, sql, params, many, context):
        if sql.startswith("WITH parent AS"):
            seen.append((sql, list(params)))
        return execute(sql, params, many, context)

    _, body = awkward_event()
    with connection.execute_wrapper(record):
        assert post_body(client, endpoint, body).status_code == 200
    [(sql, params)] = seen
    assert "%s::jsonb" in sql
    event = json.loads(body)
    texts = [p for p in params if isinstance(p, str) and p.startswith("{")]
    # The trigger row's body (the delivered text) and the inbox's payload (the checked text).
    assert texts[0] == body
    assert len(texts) == 2 and json.loads(texts[1]) == event
    wrapped = [p.obj for p in params if isinstance(p, Jsonb)]
    assert event not in wrapped  # only the delivery's headers go as a Python value


def test_a_number_beyond_a_float_is_400_not_500(client, endpoint):
    # Valid JSON that Python reads as infinity, which jsonb cannot hold.
    payload = customer_event()
    body = json.dumps(payload).replace('"cus_t1"', "1e400", 1)
    response = post_body(client, endpoint, body)
    detail = assert_problem(response, 400, "webhook-malformed-event", event_id=payload["id"])
    assert detail["detail"] == "The event holds a number out of range."
    assert not StripeEvent.objects.filter(event_id=payload["id"]).exists()


@pytest.mark.parametrize(
    "value", ["nul \\u0000 inside", "lone surrogate \\ud800"], ids=["nul", "surrogate"]
)
def test_characters_jsonb_cannot_hold_are_refused_before_storing(client, endpoint, value):
    payload = customer_event()
    body = json.dumps(payload).replace('"cus_t1"', f'"{value}"', 1)
    response = post_body(client, endpoint, body)
    detail = assert_problem(response, 400, "webhook-malformed-event", event_id=payload["id"])
    assert detail["detail"] == "The event holds characters that cannot be stored."
    assert not StripeEvent.objects.filter(event_id=payload["id"]).exists()
    # The refused delivery is recorded without its body (billing/rejections.py), never stored
    # as an event.
    assert not WebhookEventTrigger.objects.filter(valid=True).exists()


def test_on_postgresql_both_copies_of_the_delivery_are_compressed_with_lz4(client, endpoint):
    """Migration 0006: fails if the server lacks lz4 (Debian's PostgreSQL has it) or if a
    dj-stripe migration reset the trigger body's compression."""
    require_postgres(connection)
    payload = customer_event()
    payload["data"]["object"]["metadata"] = {f"key{n}": "x" * 40 + str(n) for n in range(60)}
    assert len(json.dumps(payload)) > 4000  # above TOAST's threshold: compressed on insert
    assert post_body(client, endpoint, json.dumps(payload)).status_code == 200
    row = StripeEvent.objects.get(event_id=payload["id"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(e.payload), pg_column_compression(t.body) "
            "FROM billing_stripeevent e JOIN djstripe_webhookeventtrigger t "
            "ON t.id = e.trigger_id WHERE e.id = %s",
            [row.pk],
        )
        assert cursor.fetchone() == ("lz4", "lz4")
