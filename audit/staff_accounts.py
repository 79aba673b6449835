"""Staff accounts as the access review sees them, and the one way it removes one.

The only module of the access review that knows where roles, second factors, sessions and API
tokens live: the role as the trail names it (audit.services, from staff/roles.py's registry),
django-otp's devices, and staff's sessions and tokens.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_otp import devices_for_user

from audit.privacy import username_for_trail
from audit.services import actor_snapshot
from config.context import Actor
from staff.api_tokens import api_token_revoke
from staff.models import StaffApiToken
from staff.services import sessions_end_for_user

# django-otp device classes, as a reviewer reads them.
DEVICE_LABELS = {"TOTPDevice": "authenticator app", "StaticDevice": "backup codes"}
NO_SECOND_FACTOR = "none"
SUPERUSER_PERMISSIONS = ["* (superuser: every permission)"]


@dataclass(frozen=True)
class StaffAccount:
    user_id: str
    username: str
    role: str
    groups: list[str]
    last_login: datetime | None
    second_factor: str
    permissions: list[str]


def staff_users() -> QuerySet[User]:
    """Every active account that can sign in to the admin (staff or superuser)."""
    return (
        get_user_model()
        .objects.filter(Q(is_staff=True) | Q(is_superuser=True), is_active=True)
        .order_by("pk")
    )


def second_factor_status(user: User) -> str:
    kinds = {type(device).__name__ for device in devices_for_user(user, confirmed=True)}
    labels = sorted(DEVICE_LABELS.get(kind, kind) for kind in kinds)
    return ", ".join(labels) or NO_SECOND_FACTOR


def staff_account_of(user: User) -> StaffAccount:
    """The account as it stands: role (as the trail names it), groups, last sign-in, second
    factor and every permission its groups and own grants give."""
    role = actor_snapshot(Actor(kind="user", user_id=user.pk), user=user).role
    permissions = SUPERUSER_PERMISSIONS if user.is_superuser else sorted(user.get_all_permissions())
    return StaffAccount(
        user_id=str(user.pk),
        username=username_for_trail(user.get_username()),
        role=role,
        groups=sorted(user.groups.values_list("name", flat=True)),
        last_login=user.last_login,
        second_factor=second_factor_status(user),
        permissions=permissions,
    )


def staff_account_remove(*, user_id: str) -> tuple[int, int]:
    """Deactivate the account (its role-flag change is audited by audit.receivers_access), end
    its sessions and revoke its live API tokens. Returns (sessions ended, tokens revoked)."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return 0, 0  # deleted since the review started: nothing left to remove
    now = timezone.now()
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        sessions = sessions_end_for_user(user=user)
        live = StaffApiToken.objects.filter(user=user, revoked_at__isnull=True)
        tokens = sum(api_token_revoke(token=token, now=now) for token in live)
    return sessions, tokens
