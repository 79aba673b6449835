"""PostgreSQL itself refuses UPDATE, DELETE and TRUNCATE on the trail; so do the model and ORM."""

import pytest
from django.db import DatabaseError, connection, transaction

from audit.errors import AuditRecordImmutable
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import audit_checkpoint_create

pytestmark = pytest.mark.usefixtures("postgres")


def run_raw(sql, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET reason = 'edited' WHERE sequence = %s",
        "UPDATE audit_auditevent SET hash = md5(hash) || md5(hash) WHERE sequence = %s",
        "DELETE FROM audit_auditevent WHERE sequence = %s",
    ],
)
def test_raw_update_and_delete_are_refused_by_the_database(trail, sql):
    first, _ = trail(2)
    with pytest.raises(DatabaseError, match="append-only"):
        run_raw(sql, [first.sequence])
    assert AuditEvent.objects.get(sequence=first.sequence).hash == first.hash


def test_truncate_of_the_trail_is_refused(trail):
    trail(1)
    with pytest.raises(DatabaseError, match="TRUNCATE on audit_auditevent is not allowed"):
        run_raw("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 1


def test_the_trigger_has_no_session_switch(trail):
    """Settings a session could flip (pgtrigger's ignore list, a replica-less role) do not help."""
    first = trail(1)[0]
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL pgtrigger.ignore = '{audit_auditevent_no_update}'")
        cursor.execute(
            "UPDATE audit_auditevent SET reason = 'x' WHERE sequence = %s", [first.sequence]
        )


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditcheckpoint SET signature = 'forged' WHERE id = %s",
        "DELETE FROM audit_auditcheckpoint WHERE id = %s",
    ],
)
def test_checkpoints_are_append_only_too(trail, sql):
    trail(1)
    checkpoint = audit_checkpoint_create()
    with pytest.raises(DatabaseError, match="append-only"):
        run_raw(sql, [checkpoint.pk])
    with pytest.raises(DatabaseError, match="not allowed"):
        run_raw("TRUNCATE audit_auditcheckpoint")
    assert AuditCheckpoint.objects.get(pk=checkpoint.pk).signature == checkpoint.signature


def test_orm_update_and_delete_reach_the_trigger(trail):
    trail(2)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.update(reason="bulk edit")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.filter(reason="bulk edit").count() == 0


def test_model_refuses_save_of_an_existing_row_and_delete(trail):
    event = trail(1)[0]
    event.reason = "edited in python"
    with pytest.raises(AuditRecordImmutable):
        event.save()
    with pytest.raises(AuditRecordImmutable):
        event.delete()
    assert AuditEvent.objects.get(sequence=event.sequence).reason == ""
