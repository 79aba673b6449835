"""Two PostgreSQL roles: an owner that runs migrations, and the application's role.

A table's owner can always `ALTER TABLE ... DISABLE TRIGGER`, and a superuser can do anything,
so the append-only triggers (migration 0002) only bind a role that is neither. The application
(web, worker, beat) therefore connects as a role that owns nothing: it may SELECT, INSERT,
UPDATE and DELETE on the project's tables, but only SELECT and INSERT on the append-only audit
tables (no UPDATE, DELETE, TRUNCATE, TRIGGER or REFERENCES). The owner runs `migrate` and then
`db_roles --apply` (these grants), after every migrate, so a table a migration adds is covered.

The audit chain's sealer fills a row's empty seal fields once (the trigger refuses any other
UPDATE): the application role gets UPDATE on those columns only (SEALABLE_COLUMNS, a
column-level GRANT); the table-level privileges stay SELECT and INSERT.
"""

import re
from typing import TypedDict

from django.apps import apps
from django.db import connection

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Append-only table -> columns the application may UPDATE (column-level grant): the seal
# fields, which the trigger lets be filled once, on an unsealed row, and never changed.
SEALABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "audit_auditevent": ("sequence", "prev_hash", "hash"),
}
APP_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
APPEND_ONLY_PRIVILEGES = "SELECT, INSERT"


def append_only_tables() -> list[str]:
    """Tables of the audit app's append-only models (AuditEvent, AuditCheckpoint, ...)."""
    from audit.models import AppendOnlyModel

    models = apps.get_app_config("audit").get_models()
    return sorted(m._meta.db_table for m in models if issubclass(m, AppendOnlyModel))


def _role(name: str) -> str:
    if not ROLE_NAME.match(name or ""):
        raise ValueError(f"Not a plain role name: {name!r} (lower case letters, digits, _).")
    return f'"{name}"'


def grant_statements(*, app_role: str, owner_role: str, schema: str = "public") -> list[str]:
    """The SQL that gives app_role what the application needs and nothing on the audit tables
    beyond SELECT and INSERT; default privileges cover tables owner_role creates later."""
    app, owner, schema = _role(app_role), _role(owner_role), _role(schema)
    statements = [
        f"GRANT USAGE ON SCHEMA {schema} TO {app}",
        f"GRANT {APP_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {schema} TO {app}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
        f"GRANT {APP_TABLE_PRIVILEGES} ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {app}",
    ]
    for table in append_only_tables():
        statements += [
            f'REVOKE ALL ON TABLE "{table}" FROM PUBLIC',
            f'REVOKE ALL ON TABLE "{table}" FROM {app}',
            f'GRANT {APPEND_ONLY_PRIVILEGES} ON TABLE "{table}" TO {app}',
        ]
        columns = SEALABLE_COLUMNS.get(table)
        if columns:
            listed = ", ".join(f'"{column}"' for column in columns)
            statements.append(f'GRANT UPDATE ({listed}) ON TABLE "{table}" TO {app}')
    return statements


class RoleFindings(TypedDict):
    role: str
    superuser: bool
    owned: list[tuple[str, str]]  # (table, owner)
    writable: list[str]


def role_findings() -> RoleFindings:
    """What the connected role may do to the append-only tables (PostgreSQL only):
    {"role", "superuser", "owned": [(table, owner)], "writable": [table]}."""
    tables = append_only_tables()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        role, superuser = cursor.fetchone()
        # Owning a table, or being a member of the role that owns it, allows ALTER TABLE.
        cursor.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relname = ANY(%s) "
            "AND pg_has_role(current_user, c.relowner, 'MEMBER') ORDER BY 1",
            [tables],
        )
        owned: list[tuple[str, str]] = [tuple(row) for row in cursor.fetchall()]
        cursor.execute(
            "SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NOT NULL AND ("
            "has_table_privilege(t, 'UPDATE') OR has_table_privilege(t, 'DELETE') "
            "OR has_table_privilege(t, 'TRUNCATE') OR has_table_privilege(t, 'TRIGGER')) "
            "ORDER BY 1",
            [tables],
        )
        writable: list[str] = [row[0] for row in cursor.fetchall()]
    return {"role": role, "superuser": superuser, "owned": owned, "writable": writable}
