"""Prometheus metrics of the audit trail (multiprocess-safe, bounded labels).

`action` takes values from the action registry only (a few dozen), never ids. The seal gauges
are set from the database by whichever process sealed last (the audit_seal command or the beat
task); in multiprocess mode the most recent value of a live process is reported.
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
SEAL_LAG = Gauge(
    "tollgate_audit_seal_lag_seconds",
    "Age of the oldest audit row not sealed yet (0 when none waits).",
    multiprocess_mode="livemostrecent",
)
UNSEALED = Gauge(
    "tollgate_audit_unsealed_rows",
    "Audit rows waiting for the sealer (counted up to 100,000).",
    multiprocess_mode="livemostrecent",
)
# A gauge, unlike the counters above: set from the database by beat and after each sign-off;
# the most recent value of a live process is the figure.
REVIEWS_OVERDUE = Gauge(
    "tollgate_audit_reviews_overdue",
    "Daily reviews still unsigned after AUDIT_REVIEW_SIGNOFF_BUSINESS_DAYS business days.",
    multiprocess_mode="livemostrecent",
)
ACCESS_REVIEW_OVERDUE = Gauge(
    "tollgate_audit_access_review_overdue",
    "1 when no staff access review was completed in the last AUDIT_ACCESS_REVIEW_INTERVAL_DAYS "
    "days (or none ever was), else 0.",
    multiprocess_mode="livemostrecent",
)
