"""Staff API tokens: created behind the second factor, stored hashed, expiring, revocable.

A staff action through the API needs a second factor, as in the admin. A browser has its
OTP-verified session; a script has a token its owner created in the admin while verified.
Creation, revocation and every refusal of a known token are audited (staff.signals).
"""

import hashlib
import secrets
from datetime import datetime, timedelta

import structlog
from django.contrib.auth.models import User
from django.db import transaction

from config import context
from staff import metrics, signals
from staff.models import StaffApiToken

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "tgt_"  # noqa: S105 - the marker of our tokens, not a secret
SHOWN_PREFIX_LENGTH = 12


class TokenRefused(Exception):
    """The token cannot authenticate; `reason` is unknown, revoked, expired or inactive."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(
    *, user: User, name: str, lifetime: timedelta, now: datetime
) -> tuple[StaffApiToken, str]:
    """A new token for `user`; returns it and the token text, which is never available again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = StaffApiToken.objects.create(
            user=user,
            name=name,
            prefix=raw[:SHOWN_PREFIX_LENGTH],
            digest=_digest(raw),
            expires_at=now + lifetime,
        )
        signals.api_token_created.send(
            sender=StaffApiToken, token=token, actor=context.current_actor()
        )
    return token, raw


def api_token_revoke(*, token: StaffApiToken, now: datetime) -> bool:
    """Revoke a token (False when it already was); audited."""
    with transaction.atomic():
        updated = StaffApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if updated:
            token.revoked_at = now
            signals.api_token_revoked.send(
                sender=StaffApiToken, token=token, actor=context.current_actor()
            )
    return bool(updated)


def api_token_check(*, raw: str, now: datetime) -> StaffApiToken:
    """The live token matching `raw`, with its user; raises TokenRefused otherwise."""
    token = (
        StaffApiToken.objects.select_related("user").filter(digest=_digest(raw)).first()
        if raw.startswith(TOKEN_PREFIX)
        else None
    )
    if token is None:
        reason = "unknown"
    elif token.revoked_at is not None:
        reason = "revoked"
    elif token.expires_at <= now:
        reason = "expired"
    elif not token.user.is_active:
        reason = "inactive"
    else:
        return token
    metrics.api_token_refusals.labels(reason=reason).inc()
    log.warning("staff.api_token.refused", reason=reason, token_id=token.pk if token else None)
    if token is not None:
        signals.api_token_refused.send(
            sender=StaffApiToken,
            token=token,
            actor=context.Actor(kind="user", user_id=token.user_id),
            reason=reason,
        )
    raise TokenRefused(reason)
