"""The pure ordering rules of entitlements/ordering.py: which of two same-second events of one
subscription came first, decided from their payloads alone (no database, no ids)."""

import pytest

from entitlements.ordering import Facts, guess_key, order_second, precedes, stage


def event(event_id, kind="updated", status="active", previous=None, attributes=None, **values):
    return Facts(
        event_id=event_id,
        created=100,
        kind=kind,
        status=status,
        attributes={"status": status} if attributes is None else attributes,
        previous=previous or {},
        values={"status": status, **values},
    )


def test_stages():
    assert stage(event("a", kind="created", status="incomplete")) == 0
    assert stage(event("a")) == 1
    assert stage(event("a", status="canceled")) == 2
    assert stage(event("a", status="incomplete_expired")) == 2
    assert stage(event("a", kind="deleted", status="canceled")) == 3
    # A creation that is already terminal is terminal.
    assert stage(event("a", kind="created", status="canceled")) == 2


def test_creation_first_terminal_later_deletion_last():
    created = event("z", kind="created", status="incomplete")
    updated = event("y", status="active")
    canceled = event("x", status="canceled")
    deleted = event("w", kind="deleted", status="canceled")
    assert precedes(created, updated) is True and precedes(updated, created) is False
    assert precedes(updated, canceled) is True and precedes(canceled, deleted) is True
    assert precedes(deleted, created) is False


def test_previous_attributes_place_an_update_after_the_event_it_changed_from():
    before = event("b", attributes={"status": "active", "cancel_at_period_end": False})
    after = event("a", previous={"cancel_at_period_end": False},
                  attributes={"status": "active", "cancel_at_period_end": True})  # fmt: skip
    assert precedes(before, after) is True
    assert precedes(after, before) is False


def test_previous_attributes_must_all_match():
    before = event("b", attributes={"status": "active", "cancel_at_period_end": True})
    after = event(
        "a", status="active", previous={"status": "active", "cancel_at_period_end": False}
    )
    assert precedes(before, after) is None  # one of the two differs: no conclusion


def test_previous_attributes_naming_an_attribute_the_other_does_not_state_decide_nothing():
    before = event("b", attributes={})
    after = event("a", status="past_due", previous={"latest_invoice": "in_1"},
                  attributes={"status": "past_due"})  # fmt: skip
    assert precedes(before, after) is None


@pytest.mark.parametrize(
    ("first", "then"),
    [("incomplete", "active"), ("incomplete", "trialing"), ("trialing", "paused"),
     ("past_due", "unpaid"), ("trialing", "active")],
)  # fmt: skip
def test_one_way_transitions_order_two_updates(first, then):
    a, b = event("x", status=first, attributes={}), event("y", status=then, attributes={})
    assert precedes(a, b) is True and precedes(b, a) is False


@pytest.mark.parametrize(("one", "other"), [("active", "past_due"), ("active", "active"),
                                            ("unpaid", "active")])  # fmt: skip
def test_two_way_transitions_or_equal_statuses_decide_nothing(one, other):
    a, b = event("x", status=one, attributes={}), event("y", status=other, attributes={})
    assert precedes(a, b) is None and precedes(b, a) is None


def test_contradicting_previous_attributes_fall_through_to_the_lifecycle():
    a = event("a", status="active", previous={"status": "past_due"})
    b = event("b", status="past_due", previous={"status": "active"})
    assert precedes(a, b) is None  # each says it came after the other: a cycle


@pytest.mark.parametrize("ids", [("evt_a", "evt_b"), ("evt_b", "evt_a")])
def test_order_of_a_checkout_second_whatever_the_ids(ids):
    created = event(ids[0], kind="created", status="incomplete")
    active = event(ids[1], status="active", previous={"status": "incomplete"})
    for given in ([created, active], [active, created]):
        result = order_second(given)
        assert [f.event_id for f in result.ordered] == list(ids)
        assert result.ambiguous is False


def test_disagreeing_unordered_events_are_ambiguous_and_agreeing_ones_are_not():
    a = event("a", status="active", previous={"status": "past_due"})
    b = event("b", status="past_due", previous={"status": "active"})
    assert order_second([a, b]).ambiguous is True
    same = event("c", status="active", attributes={}, period_end=5)
    twin = event("d", status="active", attributes={}, period_end=5)
    assert order_second([same, twin]).ambiguous is False


def test_a_decided_later_carrier_settles_a_disagreement():
    a = event("a", status="active", previous={"status": "past_due"})
    b = event("b", status="past_due", previous={"status": "active"})
    final = event("c", kind="deleted", status="canceled")
    result = order_second([a, b, final])
    assert result.ordered[-1].event_id == "c"
    assert result.ambiguous is False


def test_the_guess_is_the_same_in_every_input_order():
    a = event("a", status="active", previous={"status": "past_due"})
    b = event("b", status="past_due", previous={"status": "active"})
    assert [f.event_id for f in order_second([a, b]).ordered] == [
        f.event_id for f in order_second([b, a]).ordered
    ]


def test_duplicates_count_once():
    a = event("a")
    assert [f.event_id for f in order_second([a, a]).ordered] == ["a"]


def test_facts_round_trip_through_json():
    facts = event("a", previous={"status": "incomplete"}, period_end=7)
    assert Facts.from_json(facts.as_json()) == facts


def test_the_rules_decide_transitively():
    # a -> b and b -> c by previous_attributes; a and c alone say nothing of each other.
    a = event("a", status="active", attributes={"cancel_at_period_end": False}, period_end=1)
    b = event("b", status="active", previous={"cancel_at_period_end": False},
              attributes={"cancel_at_period_end": True, "latest_invoice": "in_1"})  # fmt: skip
    c = event("c", status="active", previous={"latest_invoice": "in_1"},
              attributes={"latest_invoice": "in_2"}, period_end=2)  # fmt: skip
    assert precedes(a, c) is None
    for given in ([c, b, a], [a, c, b], [b, a, c]):
        result = order_second(given)
        assert [f.event_id for f in result.ordered] == ["a", "b", "c"]
        # a and c disagree on period_end, but c is after a through b: decided, not guessed.
        assert result.ambiguous is False


def test_a_rule_overrides_the_guess():
    # Find contents whose guess would put the later event first; the rule must still win.
    for n in range(50):
        first = event("first", status="incomplete", attributes={"status": "incomplete"}, n=n)
        then = event("then", status="active", previous={"status": "incomplete"}, n=n)
        if guess_key(then) < guess_key(first):
            break
    else:
        pytest.fail("no content found whose guess contradicts the rule")
    assert [f.event_id for f in order_second([then, first]).ordered] == ["first", "then"]


def test_the_guess_follows_the_content_not_the_ids():
    one = event("evt_1", status="active", attributes={}, period_end=10)
    two = event("evt_2", status="past_due", attributes={}, period_end=20)
    swapped_one = event("evt_2", status="active", attributes={}, period_end=10)
    swapped_two = event("evt_1", status="past_due", attributes={}, period_end=20)
    first = [f.values["period_end"] for f in order_second([one, two]).ordered]
    swapped = [f.values["period_end"] for f in order_second([swapped_one, swapped_two]).ordered]
    assert first == swapped


def test_an_unknown_status_decides_nothing():
    a = event("a", status="some_future_status", attributes={})
    b = event("b", status="active", attributes={})
    assert precedes(a, b) is None and precedes(b, a) is None


def test_a_chain_of_four_is_decided_end_to_end():
    chain = [
        event(f"e{i}", status="active", attributes={"latest_invoice": f"in_{i}"},
              previous={"latest_invoice": f"in_{i - 1}"} if i else {}, period_end=i)
        for i in range(4)
    ]  # fmt: skip
    result = order_second(list(reversed(chain)))
    assert [f.event_id for f in result.ordered] == ["e0", "e1", "e2", "e3"]
    assert result.ambiguous is False
