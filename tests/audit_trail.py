"""The audit trail in tests: seal rows as production's sealer would, and empty the
append-only tables between transactional tests."""


def audit_seal(*events):
    """Run the sealer now, the caller's own open transaction included (pytest-django wraps a
    test in one), and return `events` read again with their sequence and hashes. In production
    the audit_seal command or beat does this once the writing transactions have ended."""
    from audit.models import AuditEvent
    from audit.sealing import audit_seal_pending

    audit_seal_pending(include_own_transaction=True)
    sealed = AuditEvent.objects.in_bulk([event.pk for event in events])
    return [sealed[event.pk] for event in events]


def sealed_checkpoint():
    """A checkpoint over the rows written so far, sealed first (as in production, where the
    sealer runs before the checkpoint task)."""
    from audit.services import audit_checkpoint_create

    audit_seal()
    return audit_checkpoint_create()


def sealed_review(*, day, **kwargs):
    """The daily review as beat makes it: the day's rows sealed first (a test's own transaction
    holds them, so the test seals them as the sealer would after the commit)."""
    from audit.review import daily_review_create

    audit_seal()
    return daily_review_create(day=day, **kwargs)


def clear_audit_tables() -> None:
    """Empty the append-only audit tables the way a DBA would: triggers off, delete, on.

    Needed before pytest-django flushes the database after a transactional test, because
    PostgreSQL refuses to TRUNCATE an audit table that holds rows (by design).
    """
    from django.apps import apps
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for model in apps.get_app_config("audit").get_models():
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - a model's own table
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
