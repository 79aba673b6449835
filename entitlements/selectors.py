"""Reads of entitlement state."""

from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from config.typed import typed_id
from entitlements.models import CustomerLink, Entitlement, FeatureBlock


def active_entitlements(*, now: datetime) -> QuerySet[Entitlement]:
    return Entitlement.objects.filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def user_active_entitlements(*, user_id: int, now: datetime) -> QuerySet[Entitlement]:
    return (
        active_entitlements(now=now)
        .filter(user_id=user_id)
        .select_related("feature", "plan")
        .order_by("feature__lookup_key", "source", "id")
    )


def feature_expiries(*, user_id: int, now: datetime) -> dict[str, float | None]:
    """One query: {lookup_key: latest expiry (unix seconds) or None for a grant that never ends}."""
    expiries: dict[str, float | None] = {}
    rows = active_entitlements(now=now).filter(user_id=user_id)
    for key, expires_at in rows.values_list("feature__lookup_key", "expires_at"):
        if expires_at is None or (key in expiries and expiries[key] is None):
            expiries[key] = None
        else:
            expiries[key] = max(expiries.get(key) or 0, expires_at.timestamp())
    return expiries


def user_for_customer(*, customer_id: str) -> User | None:
    links = CustomerLink.objects.select_related("user").filter(stripe_customer_id=customer_id)
    link = links.first()
    return link.user if link else None


def user_by_identifier(identifier: str) -> User | None:
    """A user by username, email or numeric id (support tools); None when not exactly one."""
    users = get_user_model().objects.filter(Q(username=identifier) | Q(email__iexact=identifier))
    user_id = typed_id(identifier)
    if user_id is not None:
        users = users | get_user_model().objects.filter(pk=user_id)
    found = list(users.distinct()[:2])
    return found[0] if len(found) == 1 else None


def open_blocks(*, user_id: int, now: datetime) -> QuerySet[FeatureBlock]:
    """The user's blocks in force: not lifted and not past their end."""
    return (
        FeatureBlock.objects.filter(user_id=user_id, lifted_at__isnull=True)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .select_related("feature")
        .order_by("feature__lookup_key")
    )
