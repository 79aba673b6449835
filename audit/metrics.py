"""Prometheus metrics of the audit trail (multiprocess-safe: counters only, bounded labels).

`action` takes values from the action registry only (a few dozen), never ids.
"""

from prometheus_client import Counter, Gauge

EVENTS = Counter(
    "tollgate_audit_events_total",
    "Audit rows committed, by action.",
    ["action"],
)
VERIFICATIONS = Counter(
    "tollgate_audit_verifications_total",
    "audit_verify runs, by outcome (failure = the chain did not verify).",
    ["outcome"],
)
# A gauge, unlike the counters above: set from the database by beat and after each sign-off;
# the most recent value of a live process is the figure.
REVIEWS_OVERDUE = Gauge(
    "tollgate_audit_reviews_overdue",
    "Daily reviews still unsigned after AUDIT_REVIEW_SIGNOFF_BUSINESS_DAYS business days.",
    multiprocess_mode="livemostrecent",
)
