"""PostgreSQL itself refuses UPDATE, DELETE and TRUNCATE on the trail; so do the model and ORM."""

import pytest
from django.db import DatabaseError, connection, transaction

from audit.errors import AuditRecordImmutable
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import audit_checkpoint_create, audit_event_record

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


SEAL = "sequence = 1, prev_hash = repeat('0', 64), hash = repeat('a', 64)"


@pytest.mark.parametrize(
    "assignments",
    [
        "reason = 'edited'",  # content, seal fields left empty
        f"{SEAL}, reason = 'edited'",  # sealing and editing in one statement
        "sequence = 1",  # only part of the seal
        "sequence = 1, hash = repeat('a', 64)",
        f"{SEAL}, xid = 1",  # claiming another transaction
        f"{SEAL}, occurred_at = now() - interval '1 day'",
    ],
)
def test_an_unsealed_row_only_ever_gets_its_seal_fields_filled(db, postgres, assignments):
    event = audit_event_record(action="billing.payment.completed", meta={"amount": 1})
    with pytest.raises(DatabaseError, match="only a row's empty seal fields may be filled"):
        run_raw(f"UPDATE audit_auditevent SET {assignments} WHERE id = %s", [event.pk])  # noqa: S608
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.sequence, stored.hash, stored.reason) == (None, None, "")


def test_seal_fields_are_filled_once_and_never_again(db, postgres):
    event = audit_event_record(action="billing.payment.completed")
    run_raw(f"UPDATE audit_auditevent SET {SEAL} WHERE id = %s", [event.pk])  # noqa: S608
    again = "sequence = 2, prev_hash = repeat('1', 64), hash = repeat('b', 64)"
    with pytest.raises(DatabaseError, match="append-only"):
        run_raw(f"UPDATE audit_auditevent SET {again} WHERE id = %s", [event.pk])  # noqa: S608
    with pytest.raises(DatabaseError, match="append-only"):
        run_raw("UPDATE audit_auditevent SET sequence = NULL, prev_hash = NULL, hash = NULL")
    assert AuditEvent.objects.get(pk=event.pk).sequence == 1


def test_the_writing_transaction_id_is_set_by_the_database(db, postgres):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (xid, actor_type, actor_id, actor_name, actor_role, "
            "action, target_type, target_id, target_repr, outcome, stripe_event_id, request_id, "
            "ip, user_agent, reason, meta) VALUES (1, 'system', '', '', 'SYSTEM', "
            "'billing.payment.completed', '', '', '', 'success', '', '', '', '', '', '{}') "
            "RETURNING xid, pg_current_xact_id()::text::bigint"
        )
        stored, current = cursor.fetchone()
    assert stored == current != 1
