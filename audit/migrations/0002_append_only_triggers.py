"""PostgreSQL refuses UPDATE, DELETE and TRUNCATE on the audit tables, with no switch.

Plain triggers rather than django-pgtrigger's Protect: pgtrigger's generated functions first
consult the `pgtrigger.ignore` session variable, which is exactly the session-level switch the
trail must not have. Only a superuser altering the table (DISABLE TRIGGER) gets past these,
and audit_verify detects what such a session changes.

TRUNCATE of an empty table removes nothing, so it is let through: Django's test flush
truncates every table, and an untouched trail must not break it.
"""

from django.db import migrations

TABLES = ("audit_auditevent", "audit_auditcheckpoint")

INSTALL = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit: % on % is not allowed: the audit trail is append-only',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE OR REPLACE FUNCTION audit_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    has_rows boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I)', TG_TABLE_SCHEMA, TG_TABLE_NAME)
        INTO has_rows;
    IF has_rows THEN
        RAISE EXCEPTION 'audit: TRUNCATE on % is not allowed: the audit trail is append-only',
            TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;
"""

TABLE_TRIGGERS = """
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
"""

UNINSTALL = """
DROP TRIGGER IF EXISTS {table}_no_update ON {table};
DROP TRIGGER IF EXISTS {table}_no_delete ON {table};
DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (make run): the model and the admin still refuse changes.
    schema_editor.execute(INSTALL, params=None)
    for table in TABLES:
        schema_editor.execute(TABLE_TRIGGERS.format(table=table), params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(UNINSTALL.format(table=table))
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_refuse_change();")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_refuse_truncate();")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
