"""Two small database primitives the ingress path relies on, PostgreSQL first, SQLite-safe."""

import hashlib

from django.db import connection, models


def insert_ignoring_conflict(obj: models.Model, *, conflict_fields: list[str]) -> int | None:
    """INSERT ... ON CONFLICT (fields) DO NOTHING RETURNING id, in one statement.

    Returns the new primary key, or None when a row with the same unique fields exists. Unlike
    create() + IntegrityError, this needs no savepoint and never aborts the transaction, so a
    concurrent duplicate costs one statement (PostgreSQL and SQLite >= 3.35 both support it).
    """
    meta = obj._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]
    quote = connection.ops.quote_name
    # Only quoted identifiers from the model's own metadata are interpolated; values are params.
    table = quote(meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    params = ", ".join(["%s"] * len(fields))
    conflict = ", ".join(quote(meta.get_field(name).column) for name in conflict_fields)
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES ({params}) "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return None
    obj.pk = row[0]
    return obj.pk


def advisory_xact_lock(namespace: str, key: str) -> None:
    """Serialize work on `key` until the current transaction ends (PostgreSQL only).

    SQLite (the embedded default) serializes every writer anyway, so this is a no-op there.
    """
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"{namespace}:{key}".encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])
