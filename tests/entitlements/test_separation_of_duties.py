"""Separation of duties: nobody grants or revokes on their own account, a bulk grant over the
threshold waits for a second staff member, `--by` names staff, users are picked by
autocomplete. Enforced in the services, so the admin, the API and the CLI all obey."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from config.context import Actor
from entitlements import approvals, services
from entitlements.errors import (
    ApprovalRequired,
    GrantRequestNotPending,
    SecondApproverRequired,
    SelfGrantRefused,
)
from entitlements.models import Entitlement, GrantRequest
from staff.api_tokens import api_token_create
from tests.staff_login import staff_login

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-test-password-42"
REQUESTS = "admin:entitlements_grantrequest_changelist"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def second_support(make_user):
    user = make_user(is_staff=True)
    user.groups.add(Group.objects.get(name="Support"))
    return user


def as_actor(user) -> Actor:
    return Actor(kind="user", user_id=user.pk)


def api_post(client, name, body, user):
    # Staff act through the API with a token made behind the second factor (docs/access.md).
    _, token = api_token_create(
        user=user, name="tests", lifetime=timedelta(days=1), now=timezone.now()
    )
    return client.post(
        reverse(name), data=json.dumps(body), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )  # fmt: skip


def refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="entitlements.grant.refused"))


def test_support_cannot_grant_to_themselves_through_the_service(support_user):
    with pytest.raises(SelfGrantRefused):
        services.entitlement_grant_manual(
            user=support_user, granted_by=support_user, actor=as_actor(support_user),
            reason="myself", feature_key="copy_trading",
        )  # fmt: skip
    assert not Entitlement.objects.exists()
    # The refusal is in the trail although the grant rolled back.
    [row] = refusals()
    assert (row.outcome, row.actor_id, row.target_id) == (
        "failure",
        str(support_user.pk),
        str(support_user.pk),
    )
    assert row.meta == {
        "user_id": support_user.pk,
        "change": "grant",
        "problem": "self-grant-refused",
    }


def test_self_grant_through_the_api_is_a_403_problem(client, support_user):
    response = api_post(
        client, "entitlements-grant",
        {"user": support_user.username, "feature": "copy_trading", "reason": "me"}, support_user,
    )  # fmt: skip
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/self-grant-refused")
    assert not Entitlement.objects.exists()


def test_self_revoke_is_refused_in_the_api_and_the_admin(client, support_user, make_user):
    mine = services.entitlement_grant_manual(
        user=support_user, granted_by=None, actor=Actor(), reason="seed", feature_key="vip_support"
    )[0]
    response = api_post(
        client, "entitlements-revoke",
        {"user": support_user.username, "feature": "vip_support", "reason": "x"}, support_user,
    )  # fmt: skip
    assert response.status_code == 403
    staff_login(client, support_user)
    selection = {"action": "revoke_selected", "_selected_action": [mine.pk]}
    client.post(
        reverse("admin:entitlements_entitlement_changelist"),
        {**selection, "apply": "1", "reason": "cleanup"},
    )
    mine.refresh_from_db()
    assert mine.revoked_at is None
    assert [row.meta["change"] for row in refusals()] == ["revoke", "revoke"]


def test_self_grant_is_allowed_when_the_setting_says_so(settings, support_user):
    settings.ENTITLEMENTS_ALLOW_SELF_GRANT = True
    rows = services.entitlement_grant_manual(
        user=support_user, granted_by=support_user, actor=as_actor(support_user),
        reason="allowed here", feature_key="copy_trading",
    )  # fmt: skip
    assert len(rows) == 1 and not refusals()


def test_a_bulk_grant_waits_for_a_second_approver(
    client, settings, make_user, support_user, second_support, finance_user
):
    settings.ENTITLEMENTS_BULK_APPROVAL_THRESHOLD = 10
    traders = [make_user() for _ in range(3)]  # 3 users x 5 features of vip = 15 > 10
    with pytest.raises(ApprovalRequired) as pending:
        services.entitlements_grant_manual(
            users=traders, granted_by=support_user, actor=as_actor(support_user),
            reason="partner batch", plan_code="vip",
        )  # fmt: skip
    assert not Entitlement.objects.exists()
    request = GrantRequest.objects.get(pk=pending.value.extensions["approval_request"])
    assert (request.status, request.entitlement_count, request.requested_by) == (
        "pending",
        15,
        support_user,
    )
    requested = AuditEvent.objects.get(action="entitlements.grant_request.created")
    assert requested.meta["user_ids"] == sorted(t.pk for t in traders)

    # The requester cannot approve their own request, in the admin or anywhere.
    staff_login(client, support_user)
    approve = {"action": "approve_selected", "_selected_action": [request.pk]}
    client.post(reverse(REQUESTS), approve)
    request.refresh_from_db()
    assert request.status == "pending" and not Entitlement.objects.exists()
    with pytest.raises(SecondApproverRequired):
        approvals.grant_request_approve(
            grant_request=request, approver=support_user, actor=as_actor(support_user)
        )

    # Someone who may not grant cannot decide it either (the service checks, not only the admin).
    with pytest.raises(SecondApproverRequired):
        approvals.grant_request_reject(
            grant_request=request, approver=finance_user, actor=as_actor(finance_user)
        )

    # Another Support member approves it in the admin: the grant is made.
    client.logout()
    staff_login(client, second_support)
    assert client.post(reverse(REQUESTS), approve).status_code == 302
    request.refresh_from_db()
    assert (request.status, request.decided_by) == ("approved", second_support)
    granted = Entitlement.objects.filter(source="manual")
    assert granted.count() == 15
    assert {(row.granted_by_id, row.reason) for row in granted} == {
        (support_user.pk, "partner batch")
    }
    approved = AuditEvent.objects.get(action="entitlements.grant_request.approved")
    assert approved.actor_id == str(second_support.pk)
    assert (
        AuditEvent.objects.filter(
            action="entitlements.grant.created", actor_id=str(second_support.pk)
        ).count()
        == 15
    )
    with pytest.raises(GrantRequestNotPending):
        approvals.grant_request_reject(
            grant_request=request, approver=second_support, actor=as_actor(second_support)
        )


def test_bulk_grant_through_the_api_answers_202_approval_required(
    client, settings, make_user, support_user, second_support
):
    settings.ENTITLEMENTS_BULK_APPROVAL_THRESHOLD = 2
    trader = make_user()
    response = api_post(
        client, "entitlements-grant",
        {"user": trader.username, "plan": "premium", "reason": "3 features"}, support_user,
    )  # fmt: skip
    assert response.status_code == 202
    body = response.json()
    assert body["type"].endswith("/approval-required")
    request = GrantRequest.objects.get(pk=body["approval_request"])
    approvals.grant_request_reject(
        grant_request=request, approver=second_support, actor=as_actor(second_support)
    )
    request.refresh_from_db()
    assert request.status == "rejected" and not Entitlement.objects.exists()
    assert AuditEvent.objects.filter(action="entitlements.grant_request.rejected").count() == 1


def test_cli_bulk_grant_becomes_a_request(settings, make_user, support_user):
    settings.ENTITLEMENTS_BULK_APPROVAL_THRESHOLD = 4
    a, b = make_user(), make_user()
    out = StringIO()
    call_command(
        "entitlements", "grant", a.username, b.username, "--plan", "premium",
        "--reason", "two traders", "--by", support_user.username, stdout=out,
    )  # fmt: skip
    assert "waits for another staff member" in out.getvalue()
    assert GrantRequest.objects.get().user_ids == sorted([a.pk, b.pk])
    assert not Entitlement.objects.exists()


@pytest.mark.parametrize("flags", [{"is_staff": False}, {"is_staff": True, "is_active": False}])
def test_cli_by_must_name_an_active_staff_member(make_user, flags):
    trader, someone = make_user(), make_user(**flags)
    with pytest.raises(CommandError, match="not an active staff member"):
        call_command(
            "entitlements", "grant", trader.username, "--feature", "copy_trading",
            "--reason", "x", "--by", someone.username,
        )  # fmt: skip
    assert not Entitlement.objects.exists()


def test_grant_form_picks_users_by_autocomplete(client, make_user, support_user, finance_user):
    for number in range(30):
        make_user(username=f"bulkuser{number}")
    staff_login(client, support_user)
    page = client.get(reverse("admin:entitlements_entitlement_grant"))
    assert page.status_code == 200
    assert b"bulkuser1" not in page.content  # no list of every account
    assert b"admin-autocomplete" in page.content
    search = reverse("admin:entitlements_entitlement_grant_users")
    params = {
        "term": "bulkuser29",
        "app_label": "entitlements",
        "model_name": "entitlement",
        "field_name": "user",
    }
    found = client.get(search, params).json()
    assert sorted(item["text"] for item in found["results"]) == ["bulkuser29"]
    paged = client.get(search, {**params, "term": "bulkuser"}).json()
    assert len(paged["results"]) == 20 and paged["pagination"]["more"] is True
    client.logout()
    staff_login(client, finance_user)  # may view entitlements, may not grant
    assert client.get(search, params).status_code == 403
