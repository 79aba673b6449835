"""Stripe grants while billing applies a batch of events: one INSERT and one UPDATE per batch.

billing applies a batch of events in one transaction (billing/batches.py) and announces it with
`stripe_event_batch`; entitlements' receiver opens `grants_batched()` around it. Inside, the
live Stripe grants of each subscription the batch reconciles are kept here: the first read
locks them (`SELECT ... FOR UPDATE`, as outside a batch), and later events of the batch read
the same instances, with the grants the batch created and without those it revoked. When the
batch ends, still inside its transaction, the stored grants it changed (extended, revoked) are
written in one UPDATE, then the grants it created in one multi-row INSERT: the UPDATE first, so
that a revoked row has left the one-live-row-per-feature index before its successor arrives.

A grant created in a batch gets its id at once, from the table's sequence (taken a few at a
time), because audit records each grant's id when the grant is announced, in the event's turn:
a sequence hands an id out once whether or not the row is ever written, and an id taken but
not used by the batch is a gap, as after any rolled-back insert. Outside a batch (one event, a
staff action, a resync) and on SQLite (`make run`), every function here writes at once.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import connection

from entitlements.batch_scope import batch_scope
from entitlements.models import Entitlement

# Ids taken from the sequence per round trip: a batch of 50 events granting three features
# each takes a few rounds, and the ids a batch leaves unused are gaps, not rows.
_IDS_PER_ROUND = 32


@dataclass
class _Batch:
    live: dict[str, list[Entitlement]] = field(default_factory=dict)  # by subscription id
    created: dict[int, Entitlement] = field(default_factory=dict)  # by id, in creation order
    changed: dict[int, Entitlement] = field(default_factory=dict)  # stored grants, by id
    changed_fields: set[str] = field(default_factory=set)  # what the services said they changed
    spare_ids: list[int] = field(default_factory=list)


_batch: ContextVar[_Batch | None] = ContextVar("entitlements_grant_batch", default=None)


@contextmanager
def grants_batched() -> Iterator[None]:
    """Keep the grants the block reconciles, and write what it changed and created in one
    UPDATE and one INSERT when it ends without an error (an error rolls the transaction back:
    nothing to write). PostgreSQL only: elsewhere the block writes as it goes."""
    if connection.vendor != "postgresql":
        yield
        return
    with batch_scope(_batch, _Batch) as batch:
        yield
    if batch is None:
        return
    if batch.changed:
        Entitlement.objects.bulk_update(list(batch.changed.values()), sorted(batch.changed_fields))
    if batch.created:
        Entitlement.objects.bulk_create(list(batch.created.values()))


def live_stripe_grants(subscription_id: str, *, lock: bool) -> list[Entitlement]:
    """The subscription's live Stripe grants, oldest first, with their features; `lock`: lock
    their rows for the transaction (always, in a batch, where the first read locks them and
    later reads get the batch's own grants)."""
    batch = _batch.get()
    if batch is not None and subscription_id in batch.live:
        return [row for row in batch.live[subscription_id] if row.revoked_at is None]
    live = Entitlement.objects.filter(
        source=Entitlement.Source.STRIPE,
        stripe_subscription_id=subscription_id,
        revoked_at__isnull=True,
    ).select_related("feature")
    if lock or batch is not None:
        live = live.select_for_update(of=("self",))
    rows = list(live.order_by("id"))
    if batch is not None:
        batch.live[subscription_id] = rows
    return list(rows)


def grants_insert(entitlements: list[Entitlement]) -> None:
    """Insert new grants: now, in one statement, or with the batch's INSERT (their ids set
    now, from the sequence)."""
    batch = _batch.get()
    if batch is None:
        Entitlement.objects.bulk_create(entitlements)
        return
    missing = len(entitlements) - len(batch.spare_ids)
    if missing > 0:
        batch.spare_ids += _ids_from_sequence(max(missing, _IDS_PER_ROUND))
    for entitlement in entitlements:
        entitlement.pk = batch.spare_ids.pop(0)
        batch.created[entitlement.pk] = entitlement
        if entitlement.source == Entitlement.Source.STRIPE:
            subscription_id = entitlement.stripe_subscription_id
            if subscription_id not in batch.live:
                live_stripe_grants(subscription_id, lock=True)
            batch.live[subscription_id].append(entitlement)


def grant_changed(entitlement: Entitlement, *, update_fields: list[str]) -> None:
    """Store changed fields of a grant: now, or with the batch's UPDATE (a grant the batch
    created is inserted as it stands when the batch ends)."""
    batch = _batch.get()
    if batch is None:
        entitlement.save(update_fields=update_fields)
        return
    if entitlement.pk not in batch.created:
        batch.changed[entitlement.pk] = entitlement
        batch.changed_fields.update(update_fields)


def _ids_from_sequence(count: int) -> list[int]:
    table = Entitlement._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [row[0] for row in cursor.fetchall()]
