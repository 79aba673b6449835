"""Admin: read-only entitlement rows, grant form and bulk revoke action for Support (reason
required), audited plan editing for users with change permission."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from config.context import Actor
from entitlements import services
from entitlements.models import Entitlement, Plan
from tests.staff_login import staff_login

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:entitlements_entitlement_changelist"
GRANT = "admin:entitlements_entitlement_grant"


def grant(user, key):
    return services.entitlement_grant_manual(
        user=user, granted_by=None, actor=Actor(), reason="seed", feature_key=key
    )[0]


def test_support_grants_a_plan_through_the_form(client, support_user, make_user, sent):
    trader = make_user()
    staff_login(client, support_user)
    page = client.get(reverse(GRANT))
    assert page.status_code == 200
    refused = client.post(reverse(GRANT), {"users": [trader.pk], "plan": Plan.objects.get(
        code="vip").pk})  # fmt: skip
    assert refused.status_code == 200 and "reason" in refused.context["form"].errors
    assert not Entitlement.objects.exists()
    response = client.post(reverse(GRANT), {
        "users": [trader.pk], "plan": Plan.objects.get(code="vip").pk,
        "expires_at": "2099-01-01 00:00", "reason": "partner account",
    })  # fmt: skip
    assert response.status_code == 302
    rows = Entitlement.objects.filter(user=trader)
    assert rows.count() == 5
    assert {(row.granted_by_id, row.reason, row.plan.code) for row in rows} == {
        (support_user.pk, "partner account", "vip")
    }
    assert {kwargs["actor"].user_id for name, kwargs in sent if name == "granted"} == {
        support_user.pk
    }


def test_bulk_revoke_requires_a_reason(client, support_user, make_user, sent):
    trader = make_user()
    rows = [grant(trader, "copy_trading"), grant(trader, "vip_support")]
    staff_login(client, support_user)
    selection = {"action": "revoke_selected", "_selected_action": [row.pk for row in rows]}
    confirm = client.post(reverse(CHANGELIST), selection)
    assert confirm.status_code == 200
    assert b"reason" in confirm.content
    assert not Entitlement.objects.filter(revoked_at__isnull=False).exists()
    blank = client.post(reverse(CHANGELIST), {**selection, "apply": "1", "reason": " "})
    assert blank.status_code == 200
    assert not Entitlement.objects.filter(revoked_at__isnull=False).exists()
    done = client.post(reverse(CHANGELIST), {**selection, "apply": "1", "reason": "fraud"})
    assert done.status_code == 302
    revoked = Entitlement.objects.filter(revoked_at__isnull=False)
    assert {(row.revoked_by_id, row.revoke_reason) for row in revoked} == {
        (support_user.pk, "fraud")
    }
    assert revoked.count() == 2
    assert [name for name, _ in sent].count("revoked") == 2


def test_entitlement_rows_are_read_only(client, support_user, make_user):
    row = grant(make_user(), "signals_basic")
    staff_login(client, support_user)
    assert client.get(reverse(CHANGELIST)).status_code == 200
    change = client.post(
        reverse("admin:entitlements_entitlement_change", args=[row.pk]), {"reason": "edited"}
    )
    assert change.status_code == 403
    assert client.get(reverse("admin:entitlements_entitlement_add")).status_code == 403
    delete = client.post(reverse("admin:entitlements_entitlement_delete", args=[row.pk]))
    assert delete.status_code == 403
    row.refresh_from_db()
    assert row.reason == "seed"


def test_view_only_staff_cannot_grant_or_revoke(client, finance_user, make_user):
    row = grant(make_user(), "signals_basic")
    staff_login(client, finance_user)
    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert client.get(reverse(GRANT)).status_code == 403
    response = client.post(reverse(CHANGELIST), {"action": "revoke_selected",
                           "_selected_action": [row.pk], "apply": "1", "reason": "x"})  # fmt: skip
    assert response.status_code == 200  # the unknown action is refused by the changelist
    row.refresh_from_db()
    assert row.revoked_at is None


def test_plan_edit_by_a_user_with_change_permission_is_audited(client, make_user, sent):
    editor = make_user(is_staff=True)
    editor.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_plan", "view_plan"])
    )
    staff_login(client, editor)
    plan = Plan.objects.get(code="premium")
    features = list(plan.features.values_list("pk", flat=True))
    copy_trading = plan.features.model.objects.get(lookup_key="copy_trading")
    response = client.post(
        reverse("admin:entitlements_plan_change", args=[plan.pk]),
        {"code": "renamed", "name": "Premium", "default_duration_days": 30, "grace_days": 7,
         "feature_set": [*features, copy_trading.pk]},
    )  # fmt: skip
    assert response.status_code == 302
    plan.refresh_from_db()
    assert (plan.code, plan.grace_days) == ("premium", 7)  # the code is read-only
    assert plan.features.filter(lookup_key="copy_trading").exists()
    changes = [kwargs for name, kwargs in sent if name == "plan_changed"]
    assert len(changes) == 1
    assert changes[0]["changes"] == {
        "grace_days": [3, 7],
        "features": {"added": ["copy_trading"], "removed": []},
    }
    assert changes[0]["actor"].user_id == editor.pk


def test_support_cannot_edit_plans(client, support_user):
    staff_login(client, support_user)
    plan = Plan.objects.get(code="free")
    response = client.post(
        reverse("admin:entitlements_plan_change", args=[plan.pk]),
        {"code": "free", "name": "Free", "default_duration_days": 30, "grace_days": 99},
    )
    assert response.status_code == 403
    plan.refresh_from_db()
    assert plan.grace_days == 3


def test_unknown_prices_are_listed(client, support_user):
    from entitlements.models import UnknownPrice

    UnknownPrice.objects.create(price_id="price_mystery", lookup_key="gold")
    staff_login(client, support_user)
    page = client.get(reverse("admin:entitlements_unknownprice_changelist"))
    assert page.status_code == 200 and b"price_mystery" in page.content


def test_subscribers_follow_a_plan_edit(
    client, make_user, customer, sent, django_capture_on_commit_callbacks
):
    from tests.entitlements.conftest import deliver

    trader = make_user()
    deliver(customer.checkout(trader))
    deliver(customer.subscription(plan="premium"))
    editor = make_user(is_staff=True)
    editor.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_plan", "view_plan"])
    )
    staff_login(client, editor)
    plan = Plan.objects.get(code="premium")
    keep = list(plan.features.exclude(lookup_key="advanced_analytics").values_list("pk", flat=True))
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:entitlements_plan_change", args=[plan.pk]),
            {"code": "premium", "name": "Premium", "default_duration_days": 30,
             "grace_days": 3, "feature_set": keep},
        )  # fmt: skip
    assert response.status_code == 302
    live = Entitlement.objects.filter(user=trader, revoked_at__isnull=True)
    assert set(live.values_list("feature__lookup_key", flat=True)) == {
        "signals_basic",
        "signals_premium",
    }
    revoked = [kwargs for name, kwargs in sent if name == "revoked"]
    assert [
        (kwargs["entitlement"].feature.lookup_key, kwargs["actor"].user_id, kwargs["reason"])
        for kwargs in revoked
    ] == [("advanced_analytics", editor.pk, "plan premium changed")]
