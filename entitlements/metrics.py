"""Prometheus metrics of entitlements (multiprocess-safe: counters only, bounded labels)."""

from prometheus_client import Counter

CHANGES = Counter(
    "tollgate_entitlement_changes_total",
    "Entitlement changes by kind and source.",
    ["change", "source"],
)
UNKNOWN_PRICES = Counter(
    "tollgate_entitlement_unknown_prices_total",
    "Stripe events whose price maps to no plan.",
)
PARKED_EVENTS = Counter(
    "tollgate_entitlement_parked_events_total",
    "Stripe events parked because their customer is not linked to a user yet.",
)
# Name kept for existing dashboards: such events are parked, not dropped (see disputes.py).
UNRESOLVED_EVENTS = Counter(
    "tollgate_entitlement_unresolved_events_total",
    "Stripe events parked because their customer is not known yet (disputes of an unseen "
    "charge); applied once it is.",
    ["event_type"],
)
DRIFT = Counter(
    "tollgate_entitlement_drift_total",
    "Entitlements found to differ from stored subscription state by reconciliation.",
    ["fixed"],
)
UNSETTLED_SECONDS = Counter(
    "tollgate_entitlement_unsettled_total",
    "Same-second events of a subscription whose payloads could not order them (the best guess "
    "stands and the subscription is fetched from Stripe in the background).",
)
