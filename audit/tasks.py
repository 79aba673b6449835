"""Periodic Celery tasks (scheduled in config/settings.py's audit section): they only call
services. A failed verification is in the trail, on the dashboard and in
tollgate_audit_verifications_total{outcome="failure"}."""

from datetime import timedelta

from celery import shared_task

from audit.access_review import access_review_gauge_refresh
from audit.charts import daily_counts_backfill
from audit.review import daily_review_create, yesterday
from audit.sealing import audit_seal_pending
from audit.services import audit_checkpoint_sign, chain_verification_run
from audit.signoff import review_overdue_gauge_refresh


@shared_task(acks_late=True)
def seal_trail() -> int:
    """The fallback sealer (the audit_seal command is the main one): seals what waits and sets
    the seal-lag gauges; does nothing while another sealer holds the lead."""
    return audit_seal_pending()


@shared_task(acks_late=True)
def sign_checkpoint() -> int:
    return audit_checkpoint_sign().sequence


@shared_task(acks_late=True)
def verify_chain() -> bool:
    return chain_verification_run().ok


@shared_task(acks_late=True)
def daily_review() -> int:
    """Review yesterday (UTC), and fill any missing daily counts of the charts' window."""
    review = daily_review_create(day=yesterday())
    daily_counts_backfill(today=yesterday() + timedelta(days=1))
    return review.pk


@shared_task(acks_late=True)
def refresh_review_overdue_gauge() -> int:
    return review_overdue_gauge_refresh()


@shared_task(acks_late=True)
def refresh_access_review_gauge() -> int:
    return access_review_gauge_refresh()
