"""Two small database primitives the ingress path relies on, PostgreSQL first, SQLite-safe."""

import functools
import hashlib
from collections.abc import Mapping
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction


def insert_ignoring_conflict(obj: models.Model, *, conflict_fields: list[str]) -> int | None:
    """INSERT ... ON CONFLICT (fields) DO NOTHING RETURNING id, in one statement.

    Returns the new primary key, or None when a row with the same unique fields exists. Unlike
    create() + IntegrityError, this needs no savepoint and never aborts the transaction, so a
    concurrent duplicate costs one statement (PostgreSQL and SQLite >= 3.35 both support it).
    """
    meta = obj._meta
    table, columns, params, values = _insert_parts(obj)
    quote = connection.ops.quote_name
    conflict = ", ".join(quote(_concrete_field(obj, name).column) for name in conflict_fields)
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES ({params}) "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return None
    new_pk: int = row[0]
    obj.pk = new_pk
    # Saved, as far as Django is concerned: a later save() is an UPDATE.
    obj._state.adding = False
    obj._state.db = connection.alias
    return new_pk


def insert_with_parent_ignoring_conflict(
    parent: models.Model,
    obj: models.Model,
    *,
    parent_field: str,
    conflict_fields: list[str],
    json_texts: Mapping[str, str] | None = None,
) -> int | None:
    """Insert `parent` always and `obj` (pointing at it through `parent_field`) unless a row
    with the same unique fields exists, in ONE statement; returns obj's new key or None.

    PostgreSQL runs it as a data-modifying CTE: one round trip and, outside a transaction, one
    commit for both rows (the webhook's acknowledgement path). Elsewhere (SQLite, `make run`)
    it is two statements in a transaction, with the same result.

    `json_texts`: {name of a JSONField of obj: that field's value already dumped to JSON}.
    PostgreSQL parses the text into the jsonb column (`::jsonb`, the same stored value)
    instead of Python dumping the value again; elsewhere the field's value is saved as usual.
    """
    if connection.vendor != "postgresql":
        with transaction.atomic():
            parent.save(force_insert=True)
            setattr(obj, _concrete_field(obj, parent_field).attname, parent.pk)
            return insert_ignoring_conflict(obj, conflict_fields=conflict_fields)
    quote = connection.ops.quote_name
    parent_table, parent_columns, parent_params, parent_values = _insert_parts(parent)
    link = _concrete_field(obj, parent_field)
    table, columns, params, values = _insert_parts(obj, exclude=link, json_texts=json_texts)
    pk, parent_pk = quote(obj._meta.pk.column), quote(parent._meta.pk.column)
    conflict = ", ".join(quote(_concrete_field(obj, name).column) for name in conflict_fields)
    # Only quoted identifiers from the models' own metadata are interpolated; values are params.
    sql = (
        f"WITH parent AS (INSERT INTO {parent_table} ({parent_columns}) "  # noqa: S608
        f"VALUES ({parent_params}) RETURNING {parent_pk}) "
        f"INSERT INTO {table} ({columns}, {quote(link.column)}) "
        f"VALUES ({params}, (SELECT {parent_pk} FROM parent)) "
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {pk}, (SELECT {parent_pk} FROM parent)"
    )
    with _server_binding_cursor() as cursor:
        cursor.execute(sql, [*parent_values, *values])
        row = cursor.fetchone()
    if row is None:
        return None
    new_pk: int = row[0]
    obj.pk = new_pk
    setattr(obj, link.attname, row[1])
    return new_pk


def _concrete_field(obj: models.Model, name: str) -> models.Field[Any, Any]:
    """The field `name` of obj's model that has a column (get_field also answers reverse
    relations and generic foreign keys, which have none)."""
    field = obj._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{type(obj).__name__}.{name} has no column of its own")
    return field


def _server_binding_cursor() -> Any:
    """A cursor of the current PostgreSQL connection that sends the values apart from the SQL
    (psycopg 3's server-side binding) instead of quoting them into it in Python, as Django's
    default client-side binding does: the webhook's insert carries the whole body twice (the
    trigger row's text and the inbox's jsonb). Only this statement: server-side binding for
    every query (Django's `server_side_binding` option) would change how all of them are
    typed. Statements are not prepared (Django's prepare_threshold stays off), so a PgBouncer
    in transaction mode needs no extra setting. Counted by django-prometheus and seen by
    execute_wrapper() like any other query."""
    connection.ensure_connection()
    cursor_class = _server_binding_class(connection.alias, connection.vendor)
    # _prepare_cursor is what connection.cursor() wraps its cursors with (thread check, the
    # debug wrapper, execute wrappers).
    return connection._prepare_cursor(  # type: ignore[attr-defined]  # Django's, not in stubs
        cursor_class(connection.connection)
    )


def _insert_parts(
    obj: models.Model,
    *,
    exclude: models.Field[Any, Any] | None = None,
    json_texts: Mapping[str, str] | None = None,
) -> tuple[str, str, str, list[Any]]:
    """(quoted table, quoted columns, placeholders, values) to INSERT `obj` without its key.

    `json_texts` (PostgreSQL only): JSON fields whose value is given as its JSON text."""
    texts = json_texts or {}
    # The connection behind django.db.connection, looked up once: the proxy finds it again
    # (thread-local lookup) on every attribute the fields' preparation reads, ~20 an insert.
    db = connections[DEFAULT_DB_ALIAS]
    table, columns, params, fields = _insert_plan(type(obj), exclude, frozenset(texts), db.vendor)
    values = [
        texts[f.name] if f.name in texts else f.get_db_prep_save(f.pre_save(obj, add=True), db)
        for f in fields
    ]
    return table, columns, params, values


@functools.cache
def _insert_plan(
    model: type[models.Model],
    exclude: models.Field[Any, Any] | None,
    json_fields: frozenset[str],
    vendor: str,
) -> tuple[str, str, str, tuple[models.Field[Any, Any], ...]]:
    """The parts of a model's INSERT that depend on its metadata only, built once per process
    instead of on every insert (bench/notes.md, *Steps 4 and 5*)."""
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key and f is not exclude)
    if not json_fields <= {f.name for f in fields if isinstance(f, models.JSONField)}:
        raise TypeError(f"{model.__name__} has no JSON fields {sorted(json_fields)}")
    if json_fields and vendor != "postgresql":
        raise TypeError("JSON texts are a PostgreSQL parameter (::jsonb)")
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    params = ", ".join("%s::jsonb" if f.name in json_fields else "%s" for f in fields)
    return quote(meta.db_table), columns, params, fields


def advisory_xact_lock(namespace: str, key: str) -> None:
    """Serialize work on `key` until the current transaction ends (PostgreSQL only).

    SQLite (the embedded default) serializes every writer anyway, so this is a no-op there.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_lock_id(namespace, key)])


def advisory_xact_locks(namespace: str, keys: list[str]) -> None:
    """advisory_xact_lock for every key, in one statement and in sorted lock-id order: two
    transactions taking overlapping sets this way never wait for each other in a cycle (the
    aggregate reads the sorted subquery in order). A no-op on SQLite, like the single lock."""
    if connection.vendor != "postgresql" or not keys:
        return
    lock_ids = sorted({advisory_lock_id(namespace, key) for key in keys})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM "
            "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS sorted",
            [lock_ids],
        )


def advisory_xact_locks_free(namespace: str, keys: list[str]) -> set[str]:
    """Take the advisory_xact_lock of every key no other transaction holds, in one statement,
    never waiting; returns the keys another transaction holds (not taken). Never waiting, it
    cannot be part of a wait cycle. SQLite: nothing is held elsewhere (no-op, empty set)."""
    if connection.vendor != "postgresql" or not keys:
        return set()
    by_id = {advisory_lock_id(namespace, key): key for key in keys}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k FROM unnest(%s::bigint[]) AS k WHERE NOT pg_try_advisory_xact_lock(k)",
            [sorted(by_id)],
        )
        return {by_id[row[0]] for row in cursor.fetchall()}


def advisory_lock_id(namespace: str, key: str) -> int:
    """The 64-bit advisory lock id of `key` in `namespace` (the first 8 bytes of a SHA-256)."""
    digest = hashlib.sha256(f"{namespace}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@functools.cache
def _server_binding_class(alias: str, vendor: str) -> Any:
    # ServerBindingCursor is Django's psycopg 3 cursor class; the stubs do not list it.
    from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
        ServerBindingCursor,
    )
    from django_prometheus.db.common import ExportingCursorWrapper

    return ExportingCursorWrapper(ServerBindingCursor, alias, vendor)
