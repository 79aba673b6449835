"""Staff API tokens made in the admin: behind the second factor, shown once, stored hashed,
bounded in lifetime, revocable, audited (staff/admin.py, staff/api_tokens.py)."""

import hashlib
import re

import pytest
from django.contrib.auth.models import Group

from audit.models import AuditEvent
from staff.models import StaffApiToken
from tests.staff_login import staff_login

pytestmark = pytest.mark.django_db
ADD = "/admin/staff/staffapitoken/add/"
CHANGELIST = "/admin/staff/staffapitoken/"


@pytest.fixture
def support(django_user_model):
    user = django_user_model.objects.create_user("sonia", is_staff=True)
    user.groups.add(Group.objects.get(name="Support"))
    return user


def create(client, name="deploy script", days=30):
    response = client.post(ADD, {"name": name, "lifetime_days": days})
    assert response.status_code == 200, response.content[:500]
    return re.search(r'<code id="api-token">(tgt_[^<]+)</code>', response.content.decode())[1]


def test_a_verified_staff_member_makes_a_token_shown_once_and_stored_hashed(client, support):
    staff_login(client, support)
    raw = create(client)
    token = StaffApiToken.objects.get()
    assert (token.user, token.name) == (support, "deploy script")
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in client.get(CHANGELIST).content.decode()
    row = AuditEvent.objects.get(action="auth.api_token.created")
    assert row.actor_id == str(support.pk)
    assert raw not in row.target_repr + row.reason + str(row.meta)
    # The token works for the API.
    api = client.__class__()
    response = api.get("/api/entitlements/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200


def test_without_the_second_factor_no_token_can_be_made(client, support):
    client.force_login(support)  # password only
    response = client.post(ADD, {"name": "sneaky", "lifetime_days": 30})
    # Sent to sign in, which then asks for the code: the form is never served or saved.
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not StaffApiToken.objects.exists()


def test_lifetime_is_bounded(client, support, settings):
    staff_login(client, support)
    too_long = settings.STAFF_API_TOKEN_MAX_DAYS + 1
    response = client.post(ADD, {"name": "forever", "lifetime_days": too_long})
    assert response.status_code == 200
    assert "At most" in response.content.decode()
    assert not StaffApiToken.objects.exists()


def test_revoking_in_the_admin_stops_the_token_and_is_audited(client, support):
    staff_login(client, support)
    raw = create(client)
    token = StaffApiToken.objects.get()
    response = client.post(
        CHANGELIST, {"action": "revoke_selected", "_selected_action": [token.pk]}
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="auth.api_token.revoked").count() == 1
    api = client.__class__()
    assert api.get("/api/entitlements/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_staff_see_only_their_own_tokens(client, support, django_user_model):
    other = django_user_model.objects.create_user("olaf", is_staff=True)
    staff_login(client, other)
    create(client, name="olafs token")
    client.logout()
    staff_login(client, support)
    assert "olafs token" not in client.get(CHANGELIST).content.decode()
