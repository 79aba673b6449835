"""Prometheus metrics of billing. All work in multiprocess mode (PROMETHEUS_MULTIPROC_DIR):
counters and histograms sum across processes; the dead-letter gauge keeps the most recent value
any live process set from the database. Label values come from small fixed sets only."""

from djstripe.signals import WEBHOOK_SIGNALS
from prometheus_client import Counter, Gauge, Histogram

# Stripe's event types as dj-stripe knows them; anything else is reported as "other" so a
# sender cannot grow the label set.
KNOWN_EVENT_TYPES = frozenset(WEBHOOK_SIGNALS)

webhook_invalid_sig = Counter(
    "billing_webhook_invalid_sig", "Webhook deliveries refused for a missing or bad signature."
)
webhook_replay_block = Counter(
    "billing_webhook_replay_block",
    "Webhook deliveries blocked as replays.",
    ["reason"],  # duplicate_event | stale_timestamp
)
webhook_duplicates = Counter(
    "tollgate_billing_webhook_duplicates",
    "Duplicate deliveries by what recognised them: Redis (no database write) or the inbox.",
    ["answered_by"],  # cache | database
)
idempotent_hits = Counter(
    "idempotent_hits",
    "Requests answered from an earlier identical request (webhook duplicates included).",
    ["operation"],
)
webhook_events_received = Counter(
    "tollgate_billing_webhook_events_received",
    "Verified new events accepted into the inbox.",
    ["type"],
)
webhook_rejected = Counter(
    "tollgate_billing_webhook_rejected", "Webhook deliveries refused, by problem type.", ["problem"]
)
webhook_throttled = Counter(
    "tollgate_billing_webhook_throttled",
    "Refused webhook deliveries answered 429 because their address exceeded the refusal limit.",
)
relay_published = Counter(
    "tollgate_billing_relay_published",
    "Events whose tasks the outbox relay published (billing/relay.py).",
)
events_processed = Counter(
    "tollgate_billing_events_processed",
    "Event application attempts by outcome (applied, retry, dead, skipped, other_mode).",
    ["type", "outcome"],
)
event_processing_seconds = Histogram(
    "tollgate_billing_event_processing_seconds",
    "Time to apply one event (our receivers, in the Celery task).",
    ["type"],
)
apply_batch_events = Histogram(
    "tollgate_billing_apply_batch_events",
    "Events per batch applied in one transaction (billing/batches.py).",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200),
)
apply_batch_fallbacks = Counter(
    "tollgate_billing_apply_batch_fallbacks",
    "Batches rolled back and handed to the one-at-a-time path, by the error's class.",
    ["error"],
)
apply_batch_deferred = Counter(
    "tollgate_billing_apply_batch_deferred",
    "Events a batch left out because another transaction held their customer's lock; "
    "published again as a batch that waits for it",
)
mirror_syncs = Counter(
    "tollgate_billing_mirror_syncs", "dj-stripe mirror sync attempts by outcome.", ["outcome"]
)
events_other_mode = Counter(
    "tollgate_billing_events_other_mode",
    "Verified events of the other mode (test in live, live in test): stored, never applied.",
    ["livemode"],  # live | test: the event's own mode
)
subscription_fetches = Counter(
    "tollgate_billing_subscription_fetches",
    "Subscriptions fetched from Stripe to settle same-second events the payloads cannot order.",
    ["outcome"],  # fetched | retry | failed | disabled
)
dead_letters = Gauge(
    "tollgate_billing_dead_letters",
    "Events whose retries are exhausted, waiting for staff.",
    multiprocess_mode="livemostrecent",
)


def event_type_label(event_type: str) -> str:
    return event_type if event_type in KNOWN_EVENT_TYPES else "other"
