"""Celery beat signs checkpoints and verifies the chain; the results land in the trail."""

from django.conf import settings

from audit import tasks
from audit.models import AuditCheckpoint, AuditEvent


def test_beat_schedule_names_the_audit_tasks():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["audit-sign-checkpoint"]["task"] == tasks.sign_checkpoint.name
    assert schedule["audit-verify-chain"]["task"] == tasks.verify_chain.name
    assert schedule["audit-daily-review"]["task"] == tasks.daily_review.name
    # Once per UTC day, at 00:30: yesterday is complete by then.
    daily = schedule["audit-daily-review"]["schedule"]
    assert (daily.hour, daily.minute) == ({0}, {30})
    gauge = schedule["audit-review-overdue-gauge"]["task"]
    assert gauge == tasks.refresh_review_overdue_gauge.name


def test_checkpoint_task_signs_the_head_and_records_it(trail):
    rows = trail(3)
    assert tasks.sign_checkpoint.delay().get() == 3
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.sequence, checkpoint.hash) == (3, rows[-1].hash)
    recorded = AuditEvent.objects.get(action="audit.checkpoint.created")
    assert recorded.meta == {"checkpoint_sequence": 3}


def test_verify_task_records_intact_then_broken(trail, tamper):
    trail(4)
    assert tasks.verify_chain.delay().get() is True
    tamper(("UPDATE audit_auditevent SET reason = 'x' WHERE sequence = %s", [2]))
    assert tasks.verify_chain.delay().get() is False
    # Insertion order (id): the verification rows are not sealed yet, so their sequence is NULL.
    results = AuditEvent.objects.filter(action="audit.chain.verified").order_by("id")
    assert [(row.outcome, row.meta["first_bad_sequence"]) for row in results] == [
        ("success", None),
        ("failure", 2),
    ]
