"""CSV export: the filtered rows in sequence order, closed by a SHA-256 manifest; audited."""

import csv
import hashlib
import io
import tempfile
import time
from datetime import UTC, timedelta, timezone

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import Target, audit_event_record
from config.context import Actor
from tests.audit_trail import audit_seal


def split_manifest(body: str) -> tuple[list[dict], dict, str]:
    content, _, manifest = body.rstrip("\n").rpartition("\n")
    content += "\n"
    assert manifest.startswith("#manifest,")
    fields = dict(part.split("=", 1) for part in manifest.split(",")[1:])
    return list(csv.DictReader(io.StringIO(content))), fields, content


def test_export_streams_the_filtered_rows_with_a_manifest(finance_client, trail):
    trail(3)
    failed = [
        audit_event_record(
            action="billing.payment.failed",
            actor=Actor(kind="stripe"),
            target=Target("invoice", f"in_failed_{i}", "invoice"),
            outcome="failure",
            meta={"amount_due": 2000 + i, "currency": "eur"},
        )
        for i in range(2)
    ]
    failed = audit_seal(*failed)  # an export holds sealed rows only
    response = finance_client.get(
        reverse("admin:audit_auditevent_export"), {"action": "billing.payment.failed"}
    )
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    rows, manifest, content = split_manifest(body)
    assert [int(row["sequence"]) for row in rows] == [event.sequence for event in failed]
    assert [row["hash"] for row in rows] == [event.hash for event in failed]
    assert rows[1]["meta"] == '{"amount_due":2001,"currency":"eur"}'
    assert manifest == {
        "rows": "2",
        "sha256": hashlib.sha256(content.encode()).hexdigest(),
    }
    (export,) = audit_seal(AuditEvent.objects.get(action="audit.export.created"))
    assert export.actor_name == "fiona"
    # The export covers the chain up to its head when it started, not its own row.
    # (rows 1-2: fiona's role change and sign-in)
    assert (export.meta["sequence_to"], export.sequence) == (failed[-1].sequence, 8)


def test_export_neutralises_spreadsheet_formulas(finance_client, trail):
    audit_event_record(
        action="billing.webhook.rejected",
        actor=Actor(kind="stripe"),
        outcome="failure",
        user_agent='=HYPERLINK("http://evil.example","x")',
        reason="@SUM(1+1)",
    )
    audit_seal()
    body = b"".join(
        finance_client.get(
            reverse("admin:audit_auditevent_export"), {"action": "billing.webhook.rejected"}
        ).streaming_content
    ).decode()
    rows, _, _ = split_manifest(body)
    assert rows[0]["user_agent"].startswith("'=HYPERLINK")
    assert rows[0]["reason"] == "'@SUM(1+1)"


def test_export_command_writes_a_file_with_manifest(trail, tmp_path):
    events = trail(4)
    out = tmp_path / "trail.csv"
    call_command("audit_export", "--out", str(out), "--action", "billing.payment.completed")
    rows, manifest, content = split_manifest(out.read_text())
    assert [int(row["sequence"]) for row in rows] == [event.sequence for event in events]
    assert manifest["sha256"] == hashlib.sha256(content.encode()).hexdigest()
    assert AuditEvent.objects.filter(action="audit.export.created", actor_type="system").exists()


def test_admin_action_exports_the_selected_rows(finance_client, trail):
    events = trail(3)
    response = finance_client.post(
        reverse("admin:audit_auditevent_changelist"),
        {"action": "export_selected", "_selected_action": [events[0].pk, events[2].pk]},
    )
    rows, manifest, _ = split_manifest(b"".join(response.streaming_content).decode())
    assert [int(row["sequence"]) for row in rows] == [events[0].sequence, events[2].sequence]
    assert manifest["rows"] == "2"


def test_export_with_a_filter_the_list_does_not_have_is_a_problem(finance_client, trail):
    trail(1)
    response = finance_client.get(
        reverse("admin:audit_auditevent_export"), {"reason__contains": "x"}
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "https://tollgate.dev/problems/audit-export-invalid"
    assert not AuditEvent.objects.filter(action="audit.export.created").exists()


@pytest.fixture(params=["America/New_York", "Asia/Tokyo"])
def server_zone(request, monkeypatch):
    """The process's local zone is not UTC (as on a server set to local time)."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


def exported(*args) -> list[int]:
    with tempfile.TemporaryDirectory() as directory:
        out = f"{directory}/export.csv"
        # Each export writes its own audit row, in this transaction's clock: filtered out.
        call_command("audit_export", "--out", out, "--action", "billing.payment.completed", *args)
        with open(out, encoding="utf-8") as handle:
            rows, _, _ = split_manifest(handle.read())
    return [int(row["sequence"]) for row in rows]


def test_export_since_and_until_read_naive_times_as_utc(trail, server_zone):
    (row,) = trail(1)
    at = row.occurred_at.astimezone(UTC).replace(tzinfo=None)
    assert exported("--since", at.isoformat()) == [row.sequence]  # inclusive
    assert exported("--since", (at + timedelta(microseconds=1)).isoformat()) == []
    assert exported("--until", at.isoformat()) == []  # exclusive
    assert exported("--until", (at + timedelta(microseconds=1)).isoformat()) == [row.sequence]
    # A date alone is midnight UTC; an explicit offset is honoured.
    assert exported("--since", at.date().isoformat(), "--until", "2999-01-01") == [row.sequence]
    tokyo = row.occurred_at.astimezone(timezone(timedelta(hours=9)))
    assert exported("--until", tokyo.isoformat()) == []
    assert exported("--since", tokyo.isoformat()) == [row.sequence]


def test_export_refuses_a_time_that_is_not_iso(db):
    with pytest.raises(CommandError, match="not an ISO date/time: 'yesterday'"):
        call_command("audit_export", "--since", "yesterday", stdout=io.StringIO())
