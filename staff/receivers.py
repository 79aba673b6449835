"""Seed the roles on migrate; count sign-in failures and lockouts (audit/ records them from the
same signals)."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_login_failed
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from staff import metrics
from staff.roles import roles_seed


@receiver(post_migrate, dispatch_uid="staff.seed_roles")
def seed_roles(sender, *, using="default", **kwargs):
    # Sent once per installed app after every migrate (and flush): seed on staff's own turn.
    if sender.label == "staff":
        roles_seed(using=using)


@receiver(user_login_failed, dispatch_uid="staff.count_login_failure")
def count_login_failure(sender, credentials=None, request=None, **kwargs):
    metrics.login_failures.inc()


@receiver(user_locked_out, dispatch_uid="staff.count_lockout")
def count_lockout(sender, request=None, username=None, ip_address=None, **kwargs):
    metrics.lockouts.inc()
