"""Minimisation in the trail: search terms kept only as a keyed hash with their length, and
email-shaped usernames masked wherever the trail names a user (docs/audit.md)."""

import hashlib
import hmac
import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import Target, audit_event_record
from config.context import Actor, acting_as
from tests.staff_login import staff_login

pytestmark = pytest.mark.django_db
TERM = "alice.smith@example.com"
KEY = "a-test-search-hash-key-of-enough-length"


def stored(row: AuditEvent) -> str:
    return json.dumps(AuditEvent.objects.values().get(pk=row.pk), default=str)


@pytest.fixture(autouse=True)
def _search_key(settings):
    settings.AUDIT_SEARCH_HASH_KEY = KEY


def expected_digest(term: str) -> str:
    return hmac.new(KEY.encode(), term.encode(), hashlib.sha256).hexdigest()


def test_a_search_term_is_stored_only_as_its_keyed_hash_and_length(finance_client):
    finance_client.get(
        reverse("admin:audit_auditevent_changelist"),
        {"q": f" {TERM} ", "outcome__exact": "failure"},
    )
    row = AuditEvent.objects.get(action="audit.trail.viewed")
    assert TERM not in stored(row) and "alice" not in stored(row)
    assert row.target_repr == "outcome__exact=failure"  # the filters stay readable
    assert row.meta["search_hmac"] == expected_digest(TERM)
    assert row.meta["search_length"] == len(TERM)


def test_an_export_keeps_only_the_hash_of_its_search_term(finance_client, trail):
    trail(1)
    response = finance_client.get(reverse("admin:audit_auditevent_export"), {"q": TERM})
    b"".join(response.streaming_content)
    row = AuditEvent.objects.get(action="audit.export.created")
    assert TERM not in stored(row)
    assert (row.meta["search_hmac"], row.meta["search_length"]) == (
        expected_digest(TERM),
        len(TERM),
    )


def test_no_search_no_digest(finance_client):
    finance_client.get(reverse("admin:audit_auditevent_changelist"))
    row = AuditEvent.objects.get(action="audit.trail.viewed")
    assert "search_hmac" not in row.meta


def test_an_email_shaped_username_is_masked_as_actor_and_in_targets(client, django_user_model):
    staff = django_user_model.objects.create_user(
        "bob.jones@example.com", password="pw", is_staff=True
    )
    with acting_as(Actor(kind="user", user_id=staff.pk)):
        audit_event_record(action="audit.chain.verified", target=Target("x", "1", "x"))
    staff.groups.add(Group.objects.get(name="Support"))  # names the user in the target
    staff_login(client, staff)  # auth.login.succeeded names them as actor
    rows = list(AuditEvent.objects.order_by("sequence"))
    assert {row.actor_name for row in rows if row.actor_type == "user"} == {"b***@example.com"}
    role = next(row for row in rows if row.action == "auth.role.changed")
    assert role.target_repr.startswith("user b***@example.com: groups added Support")
    for row in rows:
        assert "bob.jones" not in stored(row)


def test_a_plain_username_is_kept(django_user_model):
    staff = django_user_model.objects.create_user("sam", is_staff=True)
    row = audit_event_record(action="audit.chain.verified", actor=Actor("user", staff.pk))
    assert row.actor_name == "sam"
