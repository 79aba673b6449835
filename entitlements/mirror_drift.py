"""Where dj-stripe's mirror and our stored subscription state disagree (read only).

dj-stripe's Subscription rows hold the subscription as Stripe's API last answered it (the
mirror re-fetches it on each event); SubscriptionState holds what our applied events say. They
should agree on status, plan and period end. A disagreement means an event we have not applied
(or not received), a mirror sync that failed, or a bug on one side: it is reported, never fixed
here (`billing_mirror_sync` refreshes the mirror; `reconcile_entitlements --replay-events`
re-merges our events).
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from djstripe.models import Subscription

from billing import stripe_events
from entitlements.models import Plan, SubscriptionState


def _plan_code(price: stripe_events.PriceRef | None, plans: set[str]) -> str | None:
    """The plan the mirrored price maps to, as stripe_sync.plan_for_price decides (read only)."""
    if price is None:
        return None
    return next((code for code in price.plan_codes if code in plans), None)


def _when(seconds: object) -> str:
    # A parsed Stripe value (billing.stripe_events keeps them as the JSON gave them).
    if not seconds or not isinstance(seconds, int | float | str):
        return "none"
    return f"{datetime.fromtimestamp(int(seconds), tz=UTC):%Y-%m-%d %H:%M}"


def subscription_mirror_drift(
    *, state: SubscriptionState, mirrored: dict[str, Any], plans: set[str]
) -> list[str]:
    """How the mirrored subscription (Stripe's object) differs from our state ([] = none)."""
    theirs = stripe_events.subscription_change(mirrored)
    ours_status = "canceled" if state.value("deleted") else state.value("status")
    drift: list[str] = []
    if theirs.values["status"] != ours_status:
        drift.append(f"status: mirror {theirs.values['status']}, ours {ours_status}")
    their_plan = _plan_code(theirs.price, plans)
    if theirs.price is not None and their_plan != state.value("plan_code"):
        drift.append(f"plan: mirror {their_plan}, ours {state.value('plan_code')}")
    their_end, our_end = theirs.values["period_end"], state.value("period_end")
    if their_end and their_end != our_end:
        drift.append(f"period end: mirror {_when(their_end)}, ours {_when(our_end)}")
    return drift


def mirror_disagreements(
    *, customer_ids: list[str] | None = None
) -> Iterator[tuple[str, list[str]]]:
    """(subscription id, disagreements) for every subscription where dj-stripe's mirror and our
    state differ, or that only one side knows; ordered by subscription id."""
    states = SubscriptionState.objects.all()
    mirrored = Subscription.objects.all()
    if customer_ids:
        states = states.filter(stripe_customer_id__in=customer_ids)
        mirrored = mirrored.filter(customer__id__in=customer_ids)
    theirs = dict(mirrored.values_list("id", "stripe_data"))
    plans = set(Plan.objects.values_list("code", flat=True))
    ours = {state.stripe_subscription_id: state for state in states}
    for subscription_id in sorted(ours.keys() | theirs.keys()):
        state, data = ours.get(subscription_id), theirs.get(subscription_id)
        if data is None:
            drift = ["not in dj-stripe's mirror"]
        elif state is None:
            drift = ["in dj-stripe's mirror only (no applied event)"]
        else:
            drift = subscription_mirror_drift(state=state, mirrored=data, plans=plans)
        if drift:
            yield subscription_id, drift
