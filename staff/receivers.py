"""Count sign-in failures and lockouts (audit/ records them from the same signals)."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from staff import metrics


@receiver(user_login_failed, dispatch_uid="staff.count_login_failure")
def count_login_failure(sender, credentials=None, request=None, **kwargs):
    metrics.login_failures.inc()


@receiver(user_locked_out, dispatch_uid="staff.count_lockout")
def count_lockout(sender, request=None, username=None, ip_address=None, **kwargs):
    metrics.lockouts.inc()
