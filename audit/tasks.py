"""Periodic Celery tasks (scheduled in config/settings.py's audit section): they only call
services. A failed verification is in the trail, on the dashboard and in
tollgate_audit_verifications_total{outcome="failure"}."""

from celery import shared_task

from audit.sealing import audit_seal_pending
from audit.services import audit_checkpoint_sign, chain_verification_run


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
