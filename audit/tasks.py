"""Periodic Celery tasks (scheduled in config/settings.py's audit section): they only call
services. A failed verification is in the trail, on the dashboard and in
tollgate_audit_verifications_total{outcome="failure"}."""

from celery import shared_task

from audit.services import audit_checkpoint_sign, chain_verification_run


@shared_task(acks_late=True)
def sign_checkpoint() -> int:
    return audit_checkpoint_sign().sequence


@shared_task(acks_late=True)
def verify_chain() -> bool:
    return chain_verification_run().ok
