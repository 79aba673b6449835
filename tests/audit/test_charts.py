"""The dashboard's charts: daily counts pre-aggregated from real rows, drawn as inline SVG."""

from datetime import UTC, datetime, timedelta

from django.urls import reverse

from audit.charts import daily_counts_backfill
from audit.models import DailyCount


def chart(response, slug):
    return next(chart for chart in response.context["charts"] if chart.slug == slug)


def values(response, slug, label):
    return next(s.values for s in chart(response, slug).series if s.label == label)


def test_charts_count_past_days_from_the_table_and_today_live(finance_client, trail, tamper):
    today = datetime.now(UTC).date()
    old = trail(3, action="billing.payment.failed", outcome="failure")
    trail(2, action="entitlements.grant.created")
    trail(1, action="entitlements.grant.lapsed")
    trail(4, action="billing.webhook.rejected", outcome="failure")
    # Three days ago (raw SQL, triggers off): the table is filled for past days only.
    tamper(
        (
            "UPDATE audit_auditevent SET occurred_at = occurred_at - interval '3 days' "
            "WHERE sequence = ANY(%s)",
            [[row.sequence for row in old]],
        )
    )
    assert daily_counts_backfill(today=today) == 89
    assert DailyCount.objects.get(day=today - timedelta(days=3)).rows == 3

    response = finance_client.get(reverse("admin:audit_dashboard"))
    assert response.status_code == 200
    assert [c.slug for c in response.context["charts"]] == [
        "outcomes", "failed-payments", "grants", "rejected",
    ]  # fmt: skip
    assert values(response, "failed-payments", "failed")[-4:] == [3, 0, 0, 0]
    assert values(response, "grants", "grants")[-1] == 2
    assert values(response, "grants", "lapses")[-1] == 1
    assert values(response, "rejected", "rejected")[-1] == 4
    assert values(response, "outcomes", "failure")[-4] == 3
    assert len(values(response, "outcomes", "success")) == 30
    body = response.content.decode()
    assert body.count('<figure class="audit-chart"') == 4
    assert 'aria-label="Rejected webhooks, last 30 days"' in body
    assert "rejected (4 in all)" in body
    assert "<script" not in body.split('id="content-main"')[1]

    wide = finance_client.get(reverse("admin:audit_dashboard"), {"days": "90"})
    assert len(values(wide, "rejected", "rejected")) == 90
    odd = finance_client.get(reverse("admin:audit_dashboard"), {"days": "7"})
    assert len(values(odd, "rejected", "rejected")) == 30


def test_a_day_is_counted_once(trail, postgres):
    today = datetime.now(UTC).date()
    assert daily_counts_backfill(today=today) == 89
    assert daily_counts_backfill(today=today) == 89  # no rows: nothing stored, read again
    trail(1)
    tomorrow = today + timedelta(days=1)
    assert daily_counts_backfill(today=tomorrow) == 89
    assert DailyCount.objects.get(day=today).rows == 1
    assert daily_counts_backfill(today=tomorrow) == 88  # today is counted: not read again


def test_rejected_webhooks_chart_counts_deliveries_not_aggregated_rows(finance_client, postgres):
    # Refusals reach the trail as one row per address, problem and minute, carrying a count
    # (billing/rejections.py): seven refused deliveries from one address are one row, and the
    # chart finance reads must still say seven.
    from billing.rejections import rejection_count, rejection_counts_flush
    from tests.audit_trail import audit_seal

    now = datetime.now(UTC)
    for _ in range(7):
        rejection_count(address="203.0.113.9", problem="invalid-signature", status=400, now=now)
    rejection_count(address="198.51.100.4", problem="replay", status=400, now=now)
    assert rejection_counts_flush(now=now + timedelta(minutes=2)) == 2
    audit_seal()

    response = finance_client.get(reverse("admin:audit_dashboard"))
    assert values(response, "rejected", "rejected")[-1] == 8
    today = datetime.now(UTC).date()
    daily_counts_backfill(today=today + timedelta(days=1))  # today becomes a stored past day
    rejected = DailyCount.objects.get(day=today, action="billing.webhook.rejected")
    assert rejected.rows == 8
