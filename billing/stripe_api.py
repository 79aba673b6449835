"""Every call from billing into Stripe's API goes through here (the dj-stripe mirror)."""

from typing import Any

import stripe
from django.conf import settings
from djstripe.models import Event


def mirror_event(*, payload: dict[str, Any]) -> Event:
    """Let dj-stripe mirror an event: creates its Event and re-fetches the objects it names
    from Stripe's API (raises stripe.StripeError when the API fails)."""
    return Event.process(payload)


def subscription_retrieve(*, subscription_id: str) -> dict[str, Any]:
    """Stripe's current subscription object, as a plain dict (raises stripe.StripeError)."""
    subscription = stripe.Subscription.retrieve(
        subscription_id,
        api_key=settings.STRIPE_SECRET_KEY,
        stripe_version=settings.STRIPE_API_VERSION,
    )
    return subscription.to_dict()
