"""PostgreSQL: a row's seal fields are filled exactly once, and every row carries its writer's
transaction id.

- `audit_auditevent_no_update` now runs audit_seal_once(): an UPDATE passes only when it takes
  sequence, prev_hash and hash from all NULL to all set and changes no other column (compared
  as jsonb, so a column added later is covered without editing this function). Anything else,
  a sealed row included, is refused as before. DELETE and TRUNCATE stay refused
  (migration 0002).
- `audit_auditevent_xid` sets xid to pg_current_xact_id() on INSERT, whatever the INSERT
  says: a writer cannot claim an older transaction to be sealed out of turn.
"""

from django.db import migrations

TABLE = "audit_auditevent"

INSTALL = f"""
CREATE OR REPLACE FUNCTION audit_seal_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.sequence IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL
       AND NEW.sequence IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
       AND (to_jsonb(NEW) - 'sequence' - 'prev_hash' - 'hash')
           = (to_jsonb(OLD) - 'sequence' - 'prev_hash' - 'hash') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit: % on % is not allowed: the audit trail is append-only (only a '
        'row''s empty seal fields may be filled, once)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE OR REPLACE FUNCTION audit_stamp_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The top-level transaction's id, also inside a savepoint.
    NEW.xid := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS {TABLE}_no_update ON {TABLE};
CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_seal_once();
CREATE TRIGGER {TABLE}_xid BEFORE INSERT ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_stamp_xid();
"""

UNINSTALL = f"""
DROP TRIGGER IF EXISTS {TABLE}_xid ON {TABLE};
DROP TRIGGER IF EXISTS {TABLE}_no_update ON {TABLE};
CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
DROP FUNCTION IF EXISTS audit_seal_once();
DROP FUNCTION IF EXISTS audit_stamp_xid();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INSTALL, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNINSTALL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_sealed_rows")]

    operations = [migrations.RunPython(install, uninstall)]
