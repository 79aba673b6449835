"""One vocabulary for the project's signals: the one who acts is `actor`, in every signal, and
no receiver takes a `user` that could mean either the actor or the account acted upon."""

import inspect

import pytest
from django.dispatch import Signal

from billing import signals as billing_signals
from entitlements import signals as entitlement_signals
from staff import signals as staff_signals

MODULES = (billing_signals, entitlement_signals, staff_signals)
# Signals about what a person did; the others (Stripe's events, fetches, refusals counted per
# minute) have no person acting.
ACTED = {
    "dead_letter_reprocessed", "entitlement_granted", "entitlement_extended",
    "entitlement_revoked", "entitlement_lapsed", "plan_changed", "feature_blocked",
    "feature_unblocked", "change_refused", "grant_requested", "grant_request_approved",
    "grant_request_rejected", "second_factor_enrolled", "second_factor_reset",
    "api_token_created", "api_token_revoked", "api_token_refused",
}  # fmt: skip


def project_signals() -> dict[str, Signal]:
    return {
        name: value
        for module in MODULES
        for name, value in vars(module).items()
        if isinstance(value, Signal)
    }


def receivers_of(signal: Signal) -> list:
    found = []
    for _key, reference, *_ in signal.receivers:
        receiver = (
            reference() if callable(reference) and not inspect.isfunction(reference) else reference
        )
        if receiver is not None:
            found.append(receiver)
    return found


def test_every_signal_about_an_action_is_known_here():
    assert project_signals().keys() >= ACTED


@pytest.mark.parametrize("name", sorted(project_signals()))
def test_receivers_name_the_one_who_acts_actor_and_nobody_user(name):
    signal = project_signals()[name]
    receivers = receivers_of(signal)
    assert receivers, f"{name} has no receiver"
    for receiver in receivers:
        parameters = inspect.signature(receiver).parameters
        assert "user" not in parameters, f"{receiver.__qualname__} takes `user`"
        if name in ACTED:
            assert "actor" in parameters, f"{receiver.__qualname__} ignores the actor"
