"""Subscription states while billing applies a batch of events: written in one upsert.

billing applies a batch of events in one transaction (billing/batches.py) and announces it with
`stripe_event_batch`; entitlements' receiver opens `states_batched()` around it. Inside, the
states the batch's events read are kept here, one instance per subscription: the first read of
a subscription locks its row (`SELECT ... FOR UPDATE`, as outside a batch), later events of the
batch read and merge the same instance, and the states the batch created or changed are written
when the batch ends, in one `INSERT ... ON CONFLICT (stripe_subscription_id) DO UPDATE`, still
inside its transaction. Every reader of states on the apply path goes through `state_locked`
and `customer_states`, so an event always sees what the batch's earlier events left.

A new state is created only under its customer's advisory lock (every event of a customer holds
it), so no other transaction inserts the same subscription meanwhile; the upsert would
otherwise keep this batch's merge. Outside a batch (one event, the fetch task, a replay) every
function here reads and writes the database directly.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from billing.db import insert_ignoring_conflict
from entitlements.batch_scope import batch_scope
from entitlements.models import SubscriptionState

# What the upsert writes: every field but the keys, as save() does outside a batch (a field
# added to the model is written without touching this module).
_WRITTEN = [
    f.name
    for f in SubscriptionState._meta.concrete_fields
    if not f.primary_key and f.name != "stripe_subscription_id"
]


@dataclass
class _Batch:
    states: dict[str, SubscriptionState] = field(default_factory=dict)  # by subscription id
    changed: dict[str, None] = field(default_factory=dict)  # ids to write, in change order


_batch: ContextVar[_Batch | None] = ContextVar("entitlements_state_batch", default=None)


@contextmanager
def states_batched() -> Iterator[None]:
    """Keep the states the block reads and changes, and write the changed ones in one upsert
    when it ends without an error (an error rolls the transaction back: nothing to write)."""
    with batch_scope(_batch, _Batch) as batch:
        yield
    if batch is None:
        return
    changed = [batch.states[subscription_id] for subscription_id in batch.changed]
    if changed:
        _upsert(changed)


def _upsert(states: list[SubscriptionState]) -> None:
    # Fresh instances without keys: the conflict on stripe_subscription_id decides insert or
    # update, for new and stored states alike.
    rows = [
        SubscriptionState(
            stripe_subscription_id=state.stripe_subscription_id,
            **{name: getattr(state, name) for name in _WRITTEN if name != "updated_at"},
        )
        for state in states
    ]
    SubscriptionState.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["stripe_subscription_id"],
        update_fields=_WRITTEN,
    )


def state_locked(subscription_id: str) -> SubscriptionState | None:
    """The subscription's state, its row locked for the transaction (None: none stored)."""
    batch = _batch.get()
    if batch is not None and subscription_id in batch.states:
        return batch.states[subscription_id]
    states = SubscriptionState.objects.select_for_update()
    state = states.filter(stripe_subscription_id=subscription_id).first()
    if state is not None and batch is not None:
        batch.states[subscription_id] = state
    return state


def state_changed(state: SubscriptionState) -> None:
    """Store a merged state: now, or with the batch's upsert."""
    batch = _batch.get()
    if batch is None:
        state.save()
        return
    batch.states[state.stripe_subscription_id] = state
    batch.changed[state.stripe_subscription_id] = None


def state_created(state: SubscriptionState) -> SubscriptionState | None:
    """Store a new state (already merged): now, or with the batch's upsert. Outside a batch,
    None if the subscription was inserted meanwhile by a transaction not holding its customer's
    lock: the caller merges into that row instead."""
    batch = _batch.get()
    if batch is None:
        if insert_ignoring_conflict(state, conflict_fields=["stripe_subscription_id"]) is None:
            return None
        return state
    state_changed(state)
    return state


def customer_states(customer_id: str, *, lock: bool) -> list[SubscriptionState]:
    """A customer's states, oldest first: the batch's own versions in place of the stored
    ones, and the states the batch created after them. `lock`: lock their rows (always, in a
    batch)."""
    stored = SubscriptionState.objects.filter(stripe_customer_id=customer_id).order_by("pk")
    batch = _batch.get()
    # In a batch the states are kept until the upsert: locked, as state_locked locks them.
    if lock or batch is not None:
        stored = stored.select_for_update()
    if batch is None:
        return list(stored)
    states = []
    for state in stored:
        kept = batch.states.setdefault(state.stripe_subscription_id, state)
        states.append(kept)
    listed = {state.stripe_subscription_id for state in states}
    states += [
        state
        for subscription_id, state in batch.states.items()
        if subscription_id not in listed and state.stripe_customer_id == customer_id
    ]
    return states
