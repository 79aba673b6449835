"""Admin pages over 100,000 rows: a bounded number of queries and never a full COUNT(*)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent

ROWS = 100_000
pytestmark = pytest.mark.usefixtures("postgres")


@pytest.fixture
def big_trail(db):
    """100k rows in one INSERT ... SELECT; hashes are unique fillers (no chain needed here)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO audit_auditevent (
                sequence, occurred_at, actor_type, actor_id, actor_name, actor_role, action,
                target_type, target_id, target_repr, outcome, stripe_event_id, request_id, ip,
                user_agent, reason, meta, prev_hash, hash)
            SELECT i, now() - (%s - i) * interval '1 second', 'stripe', '', 'stripe', 'SYSTEM',
                   CASE WHEN i %% 10 = 0 THEN 'billing.payment.failed'
                        ELSE 'billing.payment.completed' END,
                   'invoice', 'in_' || i, 'invoice in_' || i,
                   CASE WHEN i %% 10 = 0 THEN 'failure' ELSE 'success' END,
                   'evt_' || i, '', '', '', '', '{"amount": 1900}'::jsonb,
                   md5((i - 1)::text) || md5((i - 1)::text), md5(i::text) || md5(i::text)
            FROM generate_series(1, %s) AS i
            """,
            [ROWS, ROWS],
        )
        cursor.execute(
            "INSERT INTO audit_chainhead (id, sequence, hash) VALUES (1, %s, md5(%s) || md5(%s))",
            [ROWS, str(ROWS), str(ROWS)],
        )
        cursor.execute("ANALYZE audit_auditevent")


def unbounded_counts(queries):
    return [
        q["sql"]
        for q in queries
        if "COUNT(" in q["sql"].upper()
        and "audit_auditevent" in q["sql"]
        and "LIMIT" not in q["sql"]
    ]


PAGES = [
    {},
    {"p": "3"},
    {"action": "billing.payment.failed"},
    {"outcome__exact": "failure", "actor_role__exact": "SYSTEM"},
    {"occurred_at__gte": "2000-01-01T00:00:00Z", "occurred_at__lt": "2999-01-01T00:00:00Z"},
    {"q": "in_99999"},
]


def test_admin_pages_over_100k_rows_are_bounded(
    big_trail, finance_client, django_assert_max_num_queries
):
    """One test for all pages: filling 100k rows is the slow part, done once."""
    changelist = reverse("admin:audit_auditevent_changelist")
    for params in PAGES:
        with (
            CaptureQueriesContext(connection) as queries,
            # A constant per request, whatever the row count: session, user, second-factor
            # device, permissions, the estimate, one page of rows, the audit row of the view.
            django_assert_max_num_queries(18),
        ):
            response = finance_client.get(changelist, params)
        assert response.status_code == 200, params
        assert unbounded_counts(queries.captured_queries) == [], params
        listed = response.context["cl"].result_list
        assert 0 < len(listed) <= 100, params
        if params.get("action"):
            assert all(row.action == "billing.payment.failed" for row in listed)
        if "q" in params:
            assert [row.sequence for row in listed] == [99999]

    unfiltered = finance_client.get(changelist)
    assert ROWS * 0.9 <= unfiltered.context["cl"].result_count <= ROWS * 1.1
    assert "the database's estimate" in unfiltered.content.decode()
    filtered = finance_client.get(changelist, {"outcome__exact": "success"})
    assert filtered.context["cl"].result_count == 10_001  # capped COUNT, not 90,000
    assert "More than 10000 rows match" in filtered.content.decode()

    with django_assert_max_num_queries(18):
        detail = finance_client.get(reverse("admin:audit_auditevent_change", args=[ROWS // 2]))
    assert detail.status_code == 200
    # The filler hashes are no real chain, and the detail page says so.
    assert "DOES NOT VERIFY" in detail.content.decode()
    # The dashboard adds its counts, the chain head and the last checkpoint: still constant.
    with django_assert_max_num_queries(22):
        dashboard = finance_client.get(reverse("admin:audit_dashboard"))
    assert dashboard.status_code == 200
    assert AuditEvent.objects.filter(action="audit.trail.viewed").count() == len(PAGES) + 4
