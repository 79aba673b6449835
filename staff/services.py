"""Writes of staff access: enrolling a second factor, resetting it, ending sessions."""

from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from config import context
from staff import signals

BACKUP_CODE_COUNT = 10
AUTHENTICATOR_NAME = "authenticator app"
BACKUP_NAME = "backup codes"


def second_factor_enrollment_start(*, user: User) -> TOTPDevice:
    """The user's pending (unconfirmed) authenticator, created on first call."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    return device


def second_factor_enrollment_confirm(
    *, user: User, token: str
) -> tuple[TOTPDevice, list[str]] | None:
    """Confirm the pending authenticator with a code from it; returns it and backup codes.

    The backup codes are returned once, to be shown once: only django-otp's table keeps them.
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None or not device.verify_token(token):
        return None
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        StaticDevice.objects.filter(user=user).delete()
        backup = StaticDevice.objects.create(user=user, name=BACKUP_NAME, confirmed=True)
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=backup, token=c) for c in codes)
        signals.second_factor_enrolled.send(
            sender=TOTPDevice,
            staff_member=user,
            actor=context.current_actor(),
            reason="enrolment",
        )
    return device, codes


def sessions_end_for_user(*, user: User) -> int:
    """Delete every live session of the user ("log out everywhere"); returns how many.

    Sessions are signed blobs keyed by session key, so each live one is decoded: an operator
    action, not a hot path.
    """
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()
            ended += 1
    return ended


def second_factor_reset(*, user: User, reason: str) -> int:
    """Remove all of a staff member's devices and end their sessions (a lost phone).

    They enrol again at their next sign-in. Returns the number of sessions ended.
    """
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        ended = sessions_end_for_user(user=user)
        signals.second_factor_reset.send(
            sender=TOTPDevice, staff_member=user, actor=context.current_actor(), reason=reason
        )
    return ended
