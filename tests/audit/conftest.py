"""Fixtures for the audit tests: rows written through the real service, raw SQL tampering."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction

from audit.services import Target, audit_event_record
from config.context import Actor
from tests.audit_trail import audit_seal, sealed_checkpoint, sealed_review
from tests.servers import require_postgres
from tests.staff_login import staff_login


@pytest.fixture
def postgres(db):
    """The database-enforced guarantees exist on PostgreSQL only (make test runs on it)."""
    require_postgres(connection)


@pytest.fixture
def trail(db):
    """Write n rows through audit_event_record and seal them; returns them in sequence order."""

    def write(n: int, **overrides):
        fields = {
            "action": "billing.payment.completed",
            "actor": Actor(kind="stripe"),
            "meta": {"amount": 1900, "currency": "usd"},
        } | overrides
        return audit_seal(
            *(
                audit_event_record(target=Target("invoice", f"in_{i}", f"invoice in_{i}"), **fields)
                for i in range(n)
            )
        )

    return write


@pytest.fixture
def tamper(postgres):
    """Run SQL as a superuser who switched the audit triggers off, then switch them back on."""

    def run(*statements):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER ALL")
            cursor.execute("ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER ALL")
            cursor.execute("ALTER TABLE audit_audittreenode DISABLE TRIGGER ALL")
            for statement, params in statements:
                cursor.execute(statement, params)
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER ALL")
            cursor.execute("ALTER TABLE audit_auditcheckpoint ENABLE TRIGGER ALL")
            cursor.execute("ALTER TABLE audit_audittreenode ENABLE TRIGGER ALL")

    return run


@pytest.fixture
def finance(django_user_model):
    """A staff member of the seeded Finance group (username snapshot: "fiona")."""
    user = django_user_model.objects.create_user("fiona", "fiona@example.com", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    return user


@pytest.fixture
def finance_client(client, finance):
    staff_login(client, finance)
    return client


@pytest.fixture
def day_with_findings(postgres, settings, finance, django_user_model):
    """Today reviewed with two findings: a role change (by the system) and failed sign-ins by
    `sam`; a checkpoint covers the day."""
    settings.AUDIT_REVIEW_FAILED_SIGNIN_THRESHOLD = 1
    sam = django_user_model.objects.create_user("sam", is_staff=True)
    audit_event_record(
        action="auth.login.failed",
        actor=Actor(kind="user", user_id=sam.pk),
        outcome="failure",
        target=Target("user", str(sam.pk), "user sam"),
    )
    sealed_checkpoint()
    return sealed_review(day=datetime.now(UTC).date())
