"""The offline Stripe simulator behind `manage.py stripe_simulate`.

It builds realistic event sequences from Stripe's own example objects (vendored in
stripe_examples.json: end users have no copy of Stripe's OpenAPI fixtures), signs them with the
stripe SDK's own helper and posts them over HTTP to a running Tollgate, exactly as Stripe
would. Nothing here calls Stripe or any host but the one it is pointed at.

- stripe_objects.py: Stripe objects and event envelopes for one simulated customer.
- scenarios.py: the named scenarios, each a timeline of events plus how to deliver them.
- sender.py: signing, sending with bounded retries, the summary of answers.
- local.py: the demo users and the local webhook endpoint the simulator signs for.
"""
