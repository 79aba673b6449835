"""Access events into the trail: sign-ins, failures, lockouts, second factors, role flags.

Each receiver parses what django.contrib.auth, django-axes or staff sent and records one
row through audit_event_record, inside the sender's transaction where there is one (a role
change rolls back with its row). Nothing from the credentials is kept except a username that
belongs to a real account: a password typed into the username box must never reach the trail.
"""

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth import models as auth_models
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models import Model
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.http import HttpRequest

from audit import actions
from audit.actions import ActionType
from audit.models import Outcome
from audit.privacy import username_for_trail
from audit.services import Target, audit_event_record
from config.context import Actor, current_actor
from staff import signals as staff_signals
from staff.models import StaffApiToken

User = get_user_model()
ROLE_FLAGS = ("is_superuser", "is_staff", "is_active")
_FLAGS_BEFORE = "_audit_role_flags_before"


def _user_target(user: AbstractBaseUser, detail: str = "") -> Target:
    text = f"user {username_for_trail(user.get_username())}"
    return Target("user", str(user.pk), f"{text}: {detail}" if detail else text)


def _as_actor(user: AbstractBaseUser) -> Actor:
    return Actor(kind="user", user_id=user.pk)


def _known_user(username: object) -> auth_models.User | None:
    """The account a sign-in attempt named, or None when no account has that name."""
    if not isinstance(username, str) or not username:
        return None
    return User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()


def _record_attempt(action: ActionType, username: object, ip_address: str | None = None) -> None:
    user = _known_user(username)
    audit_event_record(
        action=action.name,
        actor=_as_actor(user) if user is not None else current_actor(),
        actor_user=user,
        target=_user_target(user) if user is not None else Target("user", "", "unknown account"),
        outcome=Outcome.FAILURE,
        ip=ip_address,
    )


@receiver(user_logged_in, dispatch_uid="audit.access.login_succeeded")
def record_login(
    sender: type[AbstractBaseUser],
    *,
    user: auth_models.User,
    request: HttpRequest | None = None,
    **kwargs: object,
) -> None:
    audit_event_record(
        action=actions.LOGIN_SUCCEEDED.name,
        actor=_as_actor(user),
        actor_user=user,
        target=_user_target(user),
    )


@receiver(user_login_failed, dispatch_uid="audit.access.login_failed")
def record_login_failed(
    sender: str,
    credentials: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    **kwargs: object,
) -> None:
    # Only the username is read; the rest of the dict (password, tokens) is never touched.
    username = (credentials or {}).get(User.USERNAME_FIELD)
    _record_attempt(actions.LOGIN_FAILED, username)


@receiver(user_locked_out, dispatch_uid="audit.access.locked_out")
def record_locked_out(
    sender: str,
    request: HttpRequest | None = None,
    username: str | None = None,
    ip_address: str | None = None,
    **kwargs: object,
) -> None:
    _record_attempt(actions.LOGIN_LOCKED_OUT, username, ip_address)


@receiver(staff_signals.second_factor_enrolled, dispatch_uid="audit.access.2fa_enrolled")
def record_second_factor_enrolled(
    sender: type[Model],
    *,
    staff_member: auth_models.User,
    actor: Actor,
    reason: str = "",
    **kwargs: object,
) -> None:
    _record_second_factor(actions.SECOND_FACTOR_ENROLLED, staff_member, actor, reason)


@receiver(staff_signals.second_factor_reset, dispatch_uid="audit.access.2fa_reset")
def record_second_factor_reset(
    sender: type[Model],
    *,
    staff_member: auth_models.User,
    actor: Actor,
    reason: str = "",
    **kwargs: object,
) -> None:
    _record_second_factor(actions.SECOND_FACTOR_RESET, staff_member, actor, reason)


def _record_second_factor(
    action: ActionType, user: AbstractBaseUser, actor: Actor, reason: str
) -> None:
    audit_event_record(
        action=action.name,
        actor=actor,
        target=_user_target(user),
        reason=reason,
        meta={"user_id": user.pk},
    )


@receiver(staff_signals.api_token_created, dispatch_uid="audit.access.api_token_created")
def record_api_token_created(
    sender: type[Model], *, token: StaffApiToken, actor: Actor, **kwargs: object
) -> None:
    _record_api_token(actions.API_TOKEN_CREATED, token, actor)


@receiver(staff_signals.api_token_revoked, dispatch_uid="audit.access.api_token_revoked")
def record_api_token_revoked(
    sender: type[Model], *, token: StaffApiToken, actor: Actor, **kwargs: object
) -> None:
    _record_api_token(actions.API_TOKEN_REVOKED, token, actor)


@receiver(staff_signals.api_token_refused, dispatch_uid="audit.access.api_token_refused")
def record_api_token_refused(
    sender: type[Model], *, token: StaffApiToken, actor: Actor, reason: str = "", **kwargs: object
) -> None:
    _record_api_token(actions.API_TOKEN_REFUSED, token, actor, reason, Outcome.FAILURE)


def _record_api_token(
    action: ActionType,
    token: StaffApiToken,
    actor: Actor,
    reason: str = "",
    outcome: str = Outcome.SUCCESS,
) -> None:
    # The token's name and prefix identify it; its digest and text never reach the trail.
    audit_event_record(
        action=action.name,
        actor=actor,
        target=_user_target(token.user, f"API token {token.prefix}... {token.name}"),
        outcome=outcome,
        reason=reason,
        meta={"user_id": token.user_id, "expires_at": token.expires_at.isoformat()},
    )


def _record_role_change(user: AbstractBaseUser, detail: str, changed: list[str]) -> None:
    audit_event_record(
        action=actions.ROLE_CHANGED.name,
        target=_user_target(user, detail),
        meta={"user_id": user.pk, "changed_fields": changed},
    )


@receiver(pre_save, sender=User, dispatch_uid="audit.access.role_flags_before")
def remember_role_flags(
    sender: type[auth_models.User],
    *,
    instance: auth_models.User,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **kwargs: object,
) -> None:
    # Every sign-in saves last_login: skip the lookup when no role flag is being written.
    if raw or instance._state.adding:
        return
    if update_fields is not None and not set(update_fields) & set(ROLE_FLAGS):
        return
    before = sender._default_manager.filter(pk=instance.pk).values(*ROLE_FLAGS).first()
    setattr(instance, _FLAGS_BEFORE, before)


@receiver(post_save, sender=User, dispatch_uid="audit.access.role_flags_changed")
def record_role_flags(
    sender: type[auth_models.User],
    *,
    instance: auth_models.User,
    created: bool,
    raw: bool = False,
    **kwargs: object,
) -> None:
    before = instance.__dict__.pop(_FLAGS_BEFORE, None)
    if raw or created or before is None:
        return  # a new account has no role to change from; its groups are recorded below
    changed = [flag for flag in ROLE_FLAGS if before[flag] != getattr(instance, flag)]
    if changed:
        detail = ", ".join(f"{f} {before[f]} -> {getattr(instance, f)}" for f in changed)
        _record_role_change(instance, detail, changed)


# Group membership (User.groups) is recorded with the group and user permissions, before and
# after, in audit/receivers_permissions.py.
