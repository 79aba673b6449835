"""Reads of billing state."""

import threading
from dataclasses import dataclass
from time import monotonic
from uuid import UUID

from django.conf import settings
from djstripe.models import WebhookEndpoint

from billing.models import StripeEvent


@dataclass(frozen=True)
class EndpointAuth:
    """What verifying a delivery needs: the endpoint's Stripe id, tolerance, active secrets."""

    endpoint_id: str
    tolerance: int
    secrets: tuple[str, ...]


# Every delivery needs its endpoint's secrets: each web process keeps them for
# BILLING_WEBHOOK_ENDPOINT_CACHE_SECONDS, which saves a database round trip per delivery. A
# change made in this process (rotation, revocation) clears it at once (billing/receivers.py);
# other processes see it within the TTL. Unknown endpoints are never kept, so random UUIDs
# cannot grow it.
_endpoint_cache: dict[UUID, tuple[float, EndpointAuth]] = {}
_endpoint_cache_lock = threading.Lock()
MAX_CACHED_ENDPOINTS = 100


def endpoint_auth(*, uuid: UUID) -> EndpointAuth | None:
    """The endpoint's id, tolerance and active secrets (None when unknown), cached briefly."""
    ttl = settings.BILLING_WEBHOOK_ENDPOINT_CACHE_SECONDS
    now = monotonic()
    cached = _endpoint_cache.get(uuid)
    if cached is not None and cached[0] > now:
        return cached[1]
    auth = _endpoint_auth_query(uuid=uuid)
    if auth is not None and ttl > 0:
        with _endpoint_cache_lock:
            if len(_endpoint_cache) >= MAX_CACHED_ENDPOINTS:
                _endpoint_cache.clear()
            _endpoint_cache[uuid] = (now + ttl, auth)
    return auth


def endpoint_auth_forget() -> None:
    """Drop this process's cached endpoint secrets (called when any endpoint or secret changes)."""
    with _endpoint_cache_lock:
        _endpoint_cache.clear()


def _endpoint_auth_query(*, uuid: UUID) -> EndpointAuth | None:
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
