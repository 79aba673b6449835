"""The compliance dashboard's charts: pre-aggregated daily counts, drawn as inline SVG.

Why a table of daily counts rather than a GROUP BY per view: 90 days at millions of rows a day
is a range of hundreds of millions of index entries, read on every dashboard view. DailyCount
holds a few dozen rows per day (one per action and outcome), filled once per past day by the
daily review task (and backfilled for days without counts); only today is grouped live, over
one day of the occurred_at index, as the dashboard's figures already are. Past days do not
change: rows take the database's clock when written, so nothing lands in a closed day.

The charts are server-rendered SVG (templates/admin/audit/chart.html): no script, no CDN.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import BigIntegerField, Case, Sum, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce

from audit import actions
from audit.models import AuditEvent, DailyCount, Outcome

WINDOWS = (30, 90)
WIDTH, HEIGHT, PAD = 640, 180, 28


# A refused-webhook row stands for every refusal from one address, problem and minute
# (billing/rejections.py keeps the trail's size constant under a flood): it counts as meta.count
# deliveries, so the charts say how many were refused, not how many minutes had refusals.
_DELIVERIES = Sum(
    Case(
        When(
            action=actions.WEBHOOK_REJECTED.name,
            then=Coalesce(Cast(KT("meta__count"), BigIntegerField()), Value(1)),
        ),
        default=Value(1),
    )
)


def _grouped(start: datetime, end: datetime) -> list[tuple[str, str, int]]:
    return list(
        AuditEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .order_by()
        .values_list("action", "outcome")
        .annotate(rows=_DELIVERIES)
    )


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def daily_counts_fill(*, day: date) -> int:
    """Count one UTC day's rows per action and outcome into DailyCount (replacing the day)."""
    grouped = _grouped(_start_of(day), _start_of(day + timedelta(days=1)))
    with transaction.atomic():
        DailyCount.objects.filter(day=day).delete()
        DailyCount.objects.bulk_create(
            DailyCount(day=day, action=action, outcome=outcome, rows=rows)
            for action, outcome, rows in grouped
        )
    return len(grouped)


def daily_counts_backfill(*, today: date, days: int = max(WINDOWS)) -> int:
    """Fill the past days of the window that have no counts yet; returns how many were read."""
    first = today - timedelta(days=days - 1)
    counted = set(
        DailyCount.objects.filter(day__gte=first, day__lt=today)
        .values_list("day", flat=True)
        .distinct()
    )
    missing = [first + timedelta(days=n) for n in range(days - 1)]
    missing = [day for day in missing if day not in counted]
    for day in missing:
        daily_counts_fill(day=day)
    return len(missing)


def _per_day(*, today: date, days: int) -> list[dict[str, int]]:
    """Per day, oldest first: rows by action, by outcome and by category."""
    first = today - timedelta(days=days - 1)
    totals: list[dict[str, int]] = [{} for _ in range(days)]

    def add(day: date, action: str, outcome: str, rows: int) -> None:
        bucket = totals[(day - first).days]
        category = actions.ACTIONS[action].category if action in actions.ACTIONS else "other"
        for key in (action, f"outcome:{outcome}", f"category:{category}"):
            bucket[key] = bucket.get(key, 0) + rows

    for day, action, outcome, rows in DailyCount.objects.filter(
        day__gte=first, day__lt=today
    ).values_list("day", "action", "outcome", "rows"):
        add(day, action, outcome, rows)
    for action, outcome, rows in _grouped(_start_of(today), _start_of(today + timedelta(days=1))):
        add(today, action, outcome, rows)
    return totals


@dataclass(frozen=True)
class Series:
    label: str
    css_class: str
    values: list[int]
    points: str  # SVG polyline points, computed here: digits, commas and spaces only

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True)
class Chart:
    slug: str
    title: str
    first_day: date
    last_day: date
    peak: int
    series: list[Series]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def total(self) -> int:
        return sum(sum(series.values) for series in self.series)


def _points(values: list[int], peak: int) -> str:
    span_x = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)
    span_y = HEIGHT - 2 * PAD
    return " ".join(
        f"{PAD + index * span_x:.1f},{HEIGHT - PAD - (value / peak) * span_y:.1f}"
        for index, value in enumerate(values)
    )


# (slug, title, [(label, css class, keys summed per day)])
CHARTS = (
    (
        "outcomes",
        "Events per day by outcome",
        [
            ("success", "ok", (f"outcome:{Outcome.SUCCESS}",)),
            ("failure", "bad", (f"outcome:{Outcome.FAILURE}",)),
        ],
    ),
    ("failed-payments", "Failed payments", [("failed", "bad", (actions.PAYMENT_FAILED.name,))]),
    (
        "grants",
        "Grants against revokes and lapses",
        [
            ("grants", "ok", ("category:grant",)),
            ("revokes", "bad", (actions.GRANT_REVOKED.name, actions.BLOCK_CREATED.name)),
            ("lapses", "neutral", (actions.GRANT_LAPSED.name,)),
        ],
    ),
    ("rejected", "Rejected webhooks", [("rejected", "bad", (actions.WEBHOOK_REJECTED.name,))]),
)


def dashboard_charts(*, today: date, days: int) -> list[Chart]:
    """The dashboard's charts over the `days` days up to today (today's counts so far)."""
    totals = _per_day(today=today, days=days)
    charts = []
    for slug, title, lines in CHARTS:
        values = [
            (label, css, [sum(day.get(key, 0) for key in keys) for day in totals])
            for label, css, keys in lines
        ]
        peak = max([1, *(max(vals) for _, _, vals in values)])
        series = [Series(label, css, vals, _points(vals, peak)) for label, css, vals in values]
        charts.append(Chart(slug, title, today - timedelta(days=days - 1), today, peak, series))
    return charts
