"""Reads of billing state."""

from dataclasses import dataclass
from uuid import UUID

from djstripe.models import WebhookEndpoint

from billing.models import StripeEvent


@dataclass(frozen=True)
class EndpointAuth:
    """What verifying a delivery needs: the endpoint's Stripe id, tolerance, active secrets."""

    endpoint_id: str
    tolerance: int
    secrets: tuple[str, ...]


def endpoint_auth(*, uuid: UUID) -> EndpointAuth | None:
    """One query: the endpoint joined with its active secrets (None when unknown)."""
    rows = list(
        WebhookEndpoint.objects.filter(djstripe_uuid=uuid).values_list(
            "id", "djstripe_tolerance", "secret", "tollgate_secrets__secret"
        )
    )
    if not rows:
        return None
    endpoint_id, tolerance, djstripe_secret, _ = rows[0]
    secrets = tuple(row[3] for row in rows if row[3])
    # An endpoint synced by dj-stripe from Stripe has only its own single secret.
    if not secrets and djstripe_secret:
        secrets = (djstripe_secret,)
    return EndpointAuth(endpoint_id=endpoint_id, tolerance=tolerance, secrets=secrets)


def dead_letter_count() -> int:
    return StripeEvent.objects.filter(status=StripeEvent.Status.DEAD).count()


def dead_letter_ids() -> list[str]:
    return list(
        StripeEvent.objects.filter(status=StripeEvent.Status.DEAD)
        .order_by("received_at")
        .values_list("event_id", flat=True)
    )


def mirror_backlog() -> list[tuple[str, str]]:
    """(event id, customer id) of events whose mirror sync has not succeeded yet, oldest first."""
    return list(
        StripeEvent.objects.filter(
            mirror_status__in=[StripeEvent.MirrorStatus.PENDING, StripeEvent.MirrorStatus.FAILED]
        )
        .order_by("received_at")
        .values_list("event_id", "customer_id")
    )
