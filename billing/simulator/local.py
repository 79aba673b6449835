"""What the simulator sets up in the local database: demo users and a webhook endpoint.

The endpoint is made through billing's own service with a secret generated here and found
again on the next run through its WebhookSecret rows, so repeated runs reuse one endpoint.
"""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from djstripe.models import WebhookEndpoint

from billing import services
from billing.models import WebhookSecret

# A reserved, unroutable host (RFC 2606): marks the endpoint as the simulator's in the admin.
SIMULATOR_ENDPOINT_URL = "https://stripe-simulator.invalid/"
TOLERANCE_SECONDS = 300


def demo_users(*, scenario: str, count: int) -> list[AbstractBaseUser]:
    """demo-<scenario>-1..count, created once with unusable passwords (nobody logs in as them)."""
    User = get_user_model()
    users: list[AbstractBaseUser] = []
    for number in range(1, count + 1):
        username = f"demo-{scenario}-{number}"
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com"}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        users.append(user)
    return users


def simulator_endpoint() -> tuple[WebhookEndpoint, str]:
    """The simulator's local endpoint and a secret it accepts, created on first use."""
    endpoint = (
        WebhookEndpoint.objects.filter(url=SIMULATOR_ENDPOINT_URL)
        .order_by("djstripe_created")
        .first()
    )
    if endpoint is not None:
        secret = (
            WebhookSecret.objects.filter(endpoint=endpoint)
            .order_by("-created", "-pk")
            .values_list("secret", flat=True)
            .first()
        )
        if secret:
            return endpoint, secret
    secret = "whsec_" + secrets.token_hex(24)
    endpoint = services.webhook_endpoint_configure(
        secrets=[secret],
        tolerance=TOLERANCE_SECONDS,
        url=SIMULATOR_ENDPOINT_URL,
        uuid=endpoint.djstripe_uuid if endpoint is not None else None,
    )
    return endpoint, secret
