"""Celery tasks of entitlements: they only call services."""

from celery import shared_task

from entitlements import services


@shared_task(name="entitlements.record_lapses")
def record_lapses() -> int:
    """Beat: record lapsed grants for the audit trail. Access ends at expires_at regardless."""
    return services.entitlement_lapses_record()
