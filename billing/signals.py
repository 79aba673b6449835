"""billing's own signals: the one way the rest of Tollgate hears about Stripe.

Receivers live in entitlements/ and audit/; billing never imports them.
"""

from django.dispatch import Signal

# A verified Stripe event is being applied, exactly once per event id. Sent inside the
# transaction that marks the event applied (so receivers' writes commit or roll back with it),
# from the Celery task, never from the web request.
# kwargs: billing_event (billing.stripe_events.BillingEvent: the payload parsed once, its
#         customer resolved, a dispute's through its charge); receivers read its fields and
#         never the raw payload
stripe_event_processed = Signal()

# Sent just before stripe_event_processed, in the same transaction and with the same kwargs,
# for receivers that record the event itself (audit): its record then precedes the records
# of what it causes. Two receivers of one signal run in INSTALLED_APPS order, which is no order
# to rely on.
stripe_event_applying = Signal()

# Webhook deliveries were refused (bad signature, unknown endpoint, malformed body, ...): sent
# once per client address, problem and minute, with the count, by the beat task that closes
# the minute (billing/rejections.py), inside the transaction that deletes the bucket.
# kwargs: problem (str, the problem slug), status (int), count (int), count_incomplete (bool:
#         Redis lost part of the count, which is then a lower bound), remote_ip (str, an IPv6
#         address stands for its /64), minute (aware datetime, the minute's start)
webhook_rejected = Signal()

# Staff reprocessed a dead-lettered event. Sent in the transaction that requeues it.
# kwargs: event_id (str), event_type (str), actor (config.context.Actor: the staff member),
#         reason (str)
dead_letter_reprocessed = Signal()

# A subscription was fetched from Stripe's API (to settle events the payloads cannot order).
# Sent inside a transaction, from a Celery task. kwargs: billing_event (a BillingEvent of kind
# subscription.fetched whose `created` is the fetch time: the object is the state at that time)
stripe_subscription_fetched = Signal()

# A verified event of the other mode (a test-mode event reaching a live-mode deployment, or the
# reverse): stored and acknowledged, never applied. Sent in the transaction that marks it.
# kwargs: event_id (str), event_type (str), livemode (bool), account (str)
stripe_event_other_mode = Signal()

# A batch of events is about to be applied in one transaction (billing/batches.py). Sent once,
# inside that transaction, before the batch's first stripe_event_applying. A receiver may
# return a context manager: billing holds it open around the batch's events and closes it
# before marking them applied, still inside the transaction; it exits with the exception when
# the batch fails (and everything rolls back). audit uses it to write the batch's rows in one
# multi-row INSERT. kwargs: none
stripe_event_batch = Signal()
