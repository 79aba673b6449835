"""Two database roles on real PostgreSQL: the owner runs migrations, the application role may
only SELECT and INSERT on the audit tables, and `check --deploy` warns about a role that could
switch the triggers off.

Roles are created inside the test's transaction (PostgreSQL's DDL is transactional), so the
rollback at the end removes them with everything else; SET ROLE runs statements as them.
"""

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from audit.checks import database_role_check
from audit.models import AuditEvent
from audit.services import Target, audit_event_record
from config.context import Actor

OWNER, APP = "tollgate_test_owner", "tollgate_test_app"
AUDIT_TABLES = ("audit_auditevent", "audit_auditcheckpoint")


def sql(statement: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def refused(statement: str) -> str:
    """Run one statement in a savepoint; return PostgreSQL's refusal (fails if it worked)."""
    with pytest.raises(ProgrammingError) as caught, transaction.atomic():
        sql(statement)
    return str(caught.value)


@pytest.fixture
def roles(postgres, trail):
    """Owner and app roles as compose creates them; the owner owns the audit tables."""
    trail(2)  # rows in the trail, so the triggers would refuse a TRUNCATE too
    sql(f"CREATE ROLE {OWNER} NOLOGIN NOSUPERUSER")
    sql(f"CREATE ROLE {APP} NOLOGIN NOSUPERUSER")
    for table in AUDIT_TABLES:
        sql(f"ALTER TABLE {table} OWNER TO {OWNER}")
    yield
    sql("RESET ROLE")


def as_role(role: str):
    sql(f"SET ROLE {role}")


def test_the_owner_alone_could_switch_the_triggers_off(roles):
    # The threat the second role removes: owning the table is enough to disable its triggers.
    as_role(OWNER)
    with transaction.atomic():
        sql("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_no_update")
        transaction.set_rollback(True)


def test_the_application_role_cannot_disable_triggers_update_delete_or_truncate(roles):
    call_command("db_roles", app_role=APP, owner_role=OWNER, apply=True, verbosity=0)
    as_role(APP)
    for table in AUDIT_TABLES:
        assert "must be owner" in refused(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        if table == "audit_auditevent":
            # The seal fields may be filled once (the sealer's column grant): a filled one is
            # refused by the trigger; every other column by privileges, before any trigger.
            assert "append-only" in refused(f"UPDATE {table} SET sequence = sequence")  # noqa: S608
            assert "permission denied" in refused(f"UPDATE {table} SET reason = 'x'")  # noqa: S608
        else:
            assert "permission denied" in refused(f"UPDATE {table} SET id = id")  # noqa: S608
        assert "permission denied" in refused(f"DELETE FROM {table}")  # noqa: S608
        assert "permission denied" in refused(f"TRUNCATE {table}")
        assert "permission denied" in refused(
            f"CREATE TRIGGER t_forged BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )
    # What the application does every day still works: append and read.
    audit_event_record(
        action="billing.payment.completed",
        actor=Actor(kind="stripe"),
        target=Target("invoice", "in_app_role", "invoice in_app_role"),
    )
    assert AuditEvent.objects.filter(target_id="in_app_role").count() == 1
    assert AuditEvent.objects.count() == 3


def test_db_roles_prints_the_grants_and_refuses_odd_names(postgres, capsys):
    call_command("db_roles", app_role="tollgate_app", owner_role="tollgate_owner")
    printed = capsys.readouterr().out
    assert 'GRANT SELECT, INSERT ON TABLE "audit_auditevent" TO "tollgate_app";' in printed
    assert 'REVOKE ALL ON TABLE "audit_auditcheckpoint" FROM "tollgate_app";' in printed
    assert 'ALTER DEFAULT PRIVILEGES FOR ROLE "tollgate_owner" IN SCHEMA "public"' in printed
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("db_roles", app_role='x"; DROP TABLE y; --', owner_role="tollgate_owner")
    with pytest.raises(CommandError):
        call_command("db_roles", app_role="same", owner_role="same")


def ids(found) -> list[str]:
    return [warning.id for warning in found]


def test_deploy_check_warns_about_a_superuser_an_owner_and_missing_grants(roles):
    # The test server connects as the superuser `postgres`.
    assert ids(database_role_check(None)) == ["audit.W001"]
    as_role(OWNER)
    assert ids(database_role_check(None)) == ["audit.W002", "audit.W003"]
    sql("RESET ROLE")
    call_command("db_roles", app_role=APP, owner_role=OWNER, apply=True, verbosity=0)
    as_role(APP)
    assert database_role_check(None) == []
    sql("RESET ROLE")
    # A later hand-made grant is caught too.
    sql(f"GRANT UPDATE ON audit_auditevent TO {APP}")
    as_role(APP)
    found = database_role_check(None)
    assert ids(found) == ["audit.W003"] and "audit_auditevent" in found[0].msg
    # A member of the owner role inherits the owner's ALTER TABLE.
    sql("RESET ROLE")
    sql(f"GRANT {OWNER} TO {APP}")
    as_role(APP)
    assert "audit.W002" in ids(database_role_check(None))
