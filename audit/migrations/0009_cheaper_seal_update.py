"""PostgreSQL: the sealer's UPDATE costs half as much, with the same guarantee.

Sealing fills three columns that indexes cover, so every sealed row is a non-HOT update: it
adds an entry to every index of the table, and runs the seal-once trigger. EXPLAIN ANALYZE of
one 5,000-row batch (bench/notes.md, "The sealer, profiled"): 203 ms, 70 ms of it in the
trigger; with the two changes below and the sealer's new statement (audit/sealing.py: the
hashes as strings, the batch's id range), 100 ms, 8 ms in the trigger.

- `audit_seal_once()` compared the row before and after as jsonb (two to_jsonb() of the whole
  row per sealed row). It now blanks the seal fields of a copy of NEW and compares that copy
  with OLD as records: every column, a column added later included, each with its type's
  own equality (for jsonb, the same equality as before). Same rule, same messages: an UPDATE
  passes only when it takes sequence, prev_hash and hash from all NULL to all set and changes
  nothing else.
- The `_like` indexes (varchar_pattern_ops) that Django adds beside each indexed varchar
  column serve LIKE 'prefix%' only. Nothing searches the trail that way: the admin's search is
  exact equality (audit.admin.EXACT_SEARCH_COLUMNS), served by the plain indexes, which stay.
  A later AlterField of these columns may recreate them; tests/audit/test_sealing.py fails if
  it does.
"""

from django.db import migrations

TABLE = "audit_auditevent"
# Django's names for them (schema_editor._create_index_name(TABLE, [column], suffix="_like")).
PATTERN_INDEXES = {
    "actor_id": "audit_auditevent_actor_id_270bb4b7_like",
    "target_id": "audit_auditevent_target_id_cde481b0_like",
    "stripe_event_id": "audit_auditevent_stripe_event_id_d7c1f441_like",
    "request_id": "audit_auditevent_request_id_b6fdcfa6_like",
    "hash": "audit_auditevent_hash_d0c402da_like",
}

SEAL_ONCE_BY_RECORD = f"""
CREATE OR REPLACE FUNCTION audit_seal_once() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unsealed {TABLE};
BEGIN
    unsealed := NEW;
    unsealed.sequence := NULL;
    unsealed.prev_hash := NULL;
    unsealed.hash := NULL;
    -- Record comparison: column by column, NULLs equal to NULLs, so OLD (unsealed) matches
    -- only if NEW differs from it in nothing but the three seal fields.
    IF OLD.sequence IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL
       AND NEW.sequence IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
       AND unsealed IS NOT DISTINCT FROM OLD THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit: % on % is not allowed: the audit trail is append-only (only a '
        'row''s empty seal fields may be filled, once)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

SEAL_ONCE_BY_JSONB = """
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
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(SEAL_ONCE_BY_RECORD, params=None)
    for name in PATTERN_INDEXES.values():
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}", params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(SEAL_ONCE_BY_JSONB, params=None)
    for column, name in PATTERN_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} ({column} varchar_pattern_ops)",
            params=None,
        )


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_access_review_and_review_parameters")]

    operations = [migrations.RunPython(install, uninstall)]
