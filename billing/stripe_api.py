"""Every call from billing into Stripe's API goes through here (the dj-stripe mirror)."""

from djstripe.models import Event


def mirror_event(*, payload: dict) -> Event:
    """Let dj-stripe mirror an event: creates its Event and re-fetches the objects it names
    from Stripe's API (raises stripe.StripeError when the API fails)."""
    return Event.process(payload)
