"""billing's own signals: the one way the rest of Tollgate hears about Stripe.

Receivers live in entitlements/ and audit/; billing never imports them.
"""

from django.dispatch import Signal

# A verified Stripe event is being applied, exactly once per event id. Sent inside the
# transaction that marks the event applied (so receivers' writes commit or roll back with it),
# from the Celery task, never from the web request.
# kwargs: event (dict, the verified payload as Stripe sent it), event_id (str),
#         event_type (str), created (int, unix seconds), livemode (bool)
stripe_event_processed = Signal()

# Sent just before stripe_event_processed, in the same transaction and with the same kwargs,
# for receivers that record the event itself (audit): its record then precedes the records
# of what it causes. Two receivers of one signal run in INSTALLED_APPS order, which is no order
# to rely on.
stripe_event_applying = Signal()

# A webhook delivery was refused (bad signature, stale timestamp, malformed body, ...).
# Sent after the rejection is decided, outside any transaction that is rolled back.
# kwargs: problem (str, the problem slug), status (int), detail (str), event_id (str | None),
#         remote_ip (str | None), user_agent (str), request_id (str | None)
webhook_rejected = Signal()

# Staff reprocessed a dead-lettered event. Sent in the transaction that requeues it.
# kwargs: event_id (str), event_type (str), user (the staff User), reason (str)
dead_letter_reprocessed = Signal()
