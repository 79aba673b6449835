"""The order of one subscription's events inside one second, decided from their payloads.

Stripe's `created` has one-second resolution and its event ids are random, so a checkout, a
renewal or a dunning retry routinely puts several events of one subscription in one second, and
their ids say nothing about which came first. Pure functions: no database, no Stripe API call.

Each applied event is reduced to a `Facts` record (kept in the subscription's journal). Inside
one second, the payloads decide, in this order (the first rule that separates two events wins):

1. Place in the lifecycle: a creation comes first; a terminal status (`canceled`,
   `incomplete_expired`) is final, and a deletion is after everything.
2. `data.previous_attributes`: an update whose previous values equal another event's values
   comes after that event.
3. Stripe's status lifecycle: `incomplete` -> `active`/`trialing`, `trialing` -> `active`/
   `past_due`/`paused`, `past_due` -> `active`/`unpaid`/`canceled`, ...: a transition that can
   only go one way orders the two events.

Events that no rule separates and that disagree on a value are *ambiguous*: the caller keeps the
best guess (`guess_key`, from the content only) and settles the subscription by fetching it from
Stripe in the background. Two events that carry the same values need no order at all.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATUSES = frozenset({"canceled", "incomplete_expired"})

# Stripe's subscription lifecycle: status -> the statuses it can move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    "incomplete": frozenset({"active", "trialing", "past_due", "incomplete_expired", "canceled"}),
    "trialing": frozenset({"active", "past_due", "paused", "unpaid", "canceled"}),
    "active": frozenset({"past_due", "unpaid", "paused", "canceled"}),
    "past_due": frozenset({"active", "unpaid", "paused", "canceled"}),
    "unpaid": frozenset({"active", "canceled"}),
    "paused": frozenset({"active", "canceled"}),
    "canceled": frozenset(),
    "incomplete_expired": frozenset(),
}

CREATION, ONGOING, TERMINAL, DELETION = 0, 1, 2, 3


@dataclass(frozen=True)
class Facts:
    """What ordering needs to know of one event about one subscription (JSON-serialisable)."""

    event_id: str
    created: int
    kind: str  # "created", "updated", "deleted", "invoice", "fetch"
    status: str | None = None
    # billing.stripe_events.TRACKED_ATTRIBUTES the object states, and says it changed from
    attributes: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)  # what it sets in the stored state

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "created": self.created,
            "kind": self.kind,
            "status": self.status,
            "attributes": self.attributes,
            "previous": self.previous,
            "values": self.values,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Facts":
        return cls(
            event_id=data["id"],
            created=int(data["created"]),
            kind=data["kind"],
            status=data.get("status"),
            attributes=data.get("attributes") or {},
            previous=data.get("previous") or {},
            values=data.get("values") or {},
        )


def stage(facts: Facts) -> int:
    if facts.kind == "deleted":
        return DELETION
    if facts.status in TERMINAL_STATUSES:
        return TERMINAL
    if facts.kind == "created":
        return CREATION
    return ONGOING


def _follows_previous(later: Facts, earlier: Facts) -> bool:
    """`later` says it changed from exactly the values `earlier` states."""
    if not later.previous:
        return False
    return all(
        name in earlier.attributes and earlier.attributes[name] == value
        for name, value in later.previous.items()
    )


def precedes(a: Facts, b: Facts) -> bool | None:
    """True if a comes before b, False if after, None if the payloads cannot tell."""
    stage_a, stage_b = stage(a), stage(b)
    if stage_a != stage_b:
        return stage_a < stage_b
    after_a, after_b = _follows_previous(b, a), _follows_previous(a, b)
    if after_a != after_b:
        return after_a
    if a.status and b.status and a.status != b.status:
        forward = b.status in TRANSITIONS.get(a.status, frozenset())
        backward = a.status in TRANSITIONS.get(b.status, frozenset())
        if forward != backward:
            return forward
    return None


def guess_key(facts: Facts) -> tuple[int, str, str]:
    """A deterministic order for events the rules leave unordered, from their content only.

    Only the stored provenance of identical values can depend on the last element (the id)."""
    content = json.dumps([facts.kind, facts.status, facts.values], sort_keys=True, default=str)
    return (
        stage(facts),
        hashlib.sha256(content.encode()).hexdigest(),
        facts.event_id,
    )


def _decided_closure(group: list[Facts]) -> set[tuple[int, int]]:
    """(i, j) pairs with group[i] before group[j] by the rules, transitively."""
    before = set()
    for i, a in enumerate(group):
        for j, b in enumerate(group):
            if i != j and precedes(a, b) is True:
                before.add((i, j))
    changed = True
    while changed:
        changed = False
        for i, j in list(before):
            for k, m in list(before):
                if j == k and i != m and (i, m) not in before:
                    before.add((i, m))
                    changed = True
    # A cycle (contradicting payloads) decides nothing between its members.
    return {(i, j) for i, j in before if (j, i) not in before}


@dataclass(frozen=True)
class SecondOrder:
    ordered: list[Facts]
    ambiguous: bool  # two events that disagree on a value were ordered by guess


def order_second(events: Iterable[Facts]) -> SecondOrder:
    """The events of one second in the order the payloads say (a topological order of the
    rules, guess_key among the unordered), and whether a disagreement was left to the guess."""
    unique = {facts.event_id: facts for facts in events}
    group = sorted(unique.values(), key=guess_key)
    before = _decided_closure(group)
    placed: list[int] = []
    remaining = set(range(len(group)))
    while remaining:
        ready = [i for i in remaining if not any((j, i) in before for j in remaining if j != i)]
        chosen = min(ready or remaining)  # group is sorted by guess_key: min is the guess
        placed.append(chosen)
        remaining.discard(chosen)
    return SecondOrder(ordered=[group[i] for i in placed], ambiguous=_ambiguous(group, before))


def _ambiguous(group: list[Facts], before: set[tuple[int, int]]) -> bool:
    """Some field's last value is not decided: its carriers that no carrier follows by the
    rules disagree."""
    names = {name for facts in group for name in facts.values}
    for name in names:
        carriers = [i for i, facts in enumerate(group) if name in facts.values]
        last = [i for i in carriers if not any((i, j) in before for j in carriers)]
        values = {json.dumps(group[i].values[name], sort_keys=True, default=str) for i in last}
        if len(values) > 1:
            return True
    return False
