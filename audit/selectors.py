"""Reads of the trail for the admin: dashboard figures, chain status, export rows."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db.models import Count, QuerySet

from audit import actions
from audit.models import AuditCheckpoint, AuditEvent, ChainHead
from audit.sealing import SealBacklog, seal_backlog


@dataclass(frozen=True)
class ChainStatus:
    head_sequence: int
    head_hash: str
    latest_checkpoint: AuditCheckpoint | None
    latest_verification: AuditEvent | None
    backlog: SealBacklog


def start_of_today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def counts_since(since: datetime) -> dict[str, int]:
    """Rows per dashboard category since `since` (one grouped query on the occurred_at index)."""
    per_action = (
        AuditEvent.objects.filter(occurred_at__gte=since)
        .order_by()
        .values_list("action")
        .annotate(rows=Count("sequence"))
    )
    totals: dict[str, int] = {}
    for action, rows in per_action:
        action_type = actions.ACTIONS.get(action)
        category = action_type.category if action_type else "other"
        totals[category] = totals.get(category, 0) + rows
        totals[action] = rows
    return totals


def dead_letters_waiting() -> int | None:
    """Dead letters in billing's inbox, looked up by app label (audit never imports billing)."""
    try:
        inbox = apps.get_model("billing", "StripeEvent")
    except LookupError:
        return None
    status = getattr(getattr(inbox, "Status", None), "DEAD", "dead")
    waiting: int = inbox.objects.filter(status=status).count()
    return waiting


def chain_status() -> ChainStatus:
    head = ChainHead.objects.filter(pk=1).first()
    return ChainStatus(
        head_sequence=head.sequence if head else 0,
        head_hash=head.hash if head else "",
        latest_checkpoint=AuditCheckpoint.objects.order_by("-id").first(),
        # The newest written (by id), sealed or not yet.
        latest_verification=AuditEvent.objects.filter(action=actions.CHAIN_VERIFIED.name)
        .order_by("-id")
        .first(),
        backlog=seal_backlog(),
    )


def head_sequence() -> int:
    return ChainHead.objects.filter(pk=1).values_list("sequence", flat=True).first() or 0


def rows_by_sequence(
    queryset: QuerySet[Any],
    *,
    columns: tuple[str, ...],
    up_to: int,
    chunk_size: int | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Rows of `queryset` in sequence order, in keyset chunks: constant memory, no OFFSET."""
    chunk_size = chunk_size or settings.AUDIT_CHUNK_SIZE
    queryset = queryset.filter(sequence__lte=up_to).order_by("sequence")
    last = 0
    while True:
        chunk = list(queryset.filter(sequence__gt=last).values_list(*columns)[:chunk_size])
        if not chunk:
            return
        yield from chunk
        last = chunk[-1][0]
