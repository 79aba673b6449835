"""System checks of billing's configuration (ids billing.E0xx / billing.W0xx)."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.compatibility)
def check_billing_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    issues: list[checks.CheckMessage] = []
    for name in ("BILLING_EVENT_MAX_RETRIES", "BILLING_MIRROR_MAX_RETRIES"):
        if getattr(settings, name) < 0:
            issues.append(checks.Error(f"{name} must be 0 or more.", id="billing.E001"))
    if settings.BILLING_WEBHOOK_DEDUP_TTL < 1:
        issues.append(
            checks.Error("BILLING_WEBHOOK_DEDUP_TTL must be at least 1.", id="billing.E002")
        )
    for name in (
        "BILLING_WEBHOOK_REJECTION_LIMIT",
        "BILLING_WEBHOOK_REJECTION_WINDOW_SECONDS",
        "BILLING_REJECTED_DELIVERY_RETENTION_HOURS",
        "BILLING_RELAY_BATCH_SIZE",
    ):
        if getattr(settings, name) < 1:
            issues.append(checks.Error(f"{name} must be at least 1.", id="billing.E003"))
    if getattr(settings, "PRODUCTION", False) and settings.CELERY_TASK_ALWAYS_EAGER:
        issues.append(
            checks.Warning(
                "Celery runs eagerly in production: Stripe events are processed inside the "
                "webhook request instead of by a worker.",
                hint="Unset CELERY_TASK_ALWAYS_EAGER and run `celery -A config worker`.",
                id="billing.W001",
            )
        )
    return issues
