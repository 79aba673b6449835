"""A user typed by support staff (API, command) is found by name, email or id, or not at all:
digit-like text never reaches int() or the database as a number it cannot hold."""

import pytest

from entitlements.selectors import user_by_identifier

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("identifier", ["²", "٣", "9" * 30, str(2**63)])
def test_digit_like_identifiers_find_nobody(django_user_model, identifier):
    django_user_model.objects.create_user("alice", "alice@example.com")
    assert user_by_identifier(identifier) is None


def test_a_plain_id_name_or_email_finds_the_user(django_user_model):
    alice = django_user_model.objects.create_user("alice", "alice@example.com")
    assert user_by_identifier(str(alice.pk)) == alice
    assert user_by_identifier("alice") == alice
    assert user_by_identifier("ALICE@example.com") == alice
