"""Prometheus metrics of the audit trail (multiprocess-safe: counters only, bounded labels).

`action` takes values from the action registry only (a few dozen), never ids.
"""

from prometheus_client import Counter

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
