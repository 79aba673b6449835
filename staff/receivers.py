"""Seed the roles on migrate; count sign-in failures and lockouts (audit/ records them from the
same signals)."""

from typing import Any

from axes.signals import user_locked_out
from django.apps import AppConfig
from django.contrib.auth.signals import user_login_failed
from django.db.models.signals import post_migrate
from django.dispatch import receiver
from django.http import HttpRequest

from staff import metrics
from staff.roles import roles_seed


@receiver(post_migrate, dispatch_uid="staff.seed_roles")
def seed_roles(sender: AppConfig, *, using: str = "default", **kwargs: object) -> None:
    # Sent once per installed app after every migrate (and flush): seed on staff's own turn.
    if sender.label == "staff":
        roles_seed(using=using)


@receiver(user_login_failed, dispatch_uid="staff.count_login_failure")
def count_login_failure(
    sender: str,
    credentials: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    **kwargs: object,
) -> None:
    metrics.login_failures.inc()


@receiver(user_locked_out, dispatch_uid="staff.count_lockout")
def count_lockout(
    sender: str,
    request: HttpRequest | None = None,
    username: str | None = None,
    ip_address: str | None = None,
    **kwargs: object,
) -> None:
    metrics.lockouts.inc()
