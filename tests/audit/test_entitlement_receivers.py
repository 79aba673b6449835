"""Every entitlement change and plan edit lands in the trail (through entitlements services)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from config.context import Actor
from entitlements import services
from entitlements.models import Feature, Plan


@pytest.fixture
def people(django_user_model):
    support = django_user_model.objects.create_user("sue", "sue@example.com", is_staff=True)
    support.groups.add(Group.objects.get_or_create(name="Support")[0])
    customer = django_user_model.objects.create_user("carl", "carl@example.com")
    return support, customer


@pytest.fixture
def feature(db):
    return Feature.objects.create(lookup_key="audit-test-signals", name="Signals")


def rows(action):
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def test_manual_grant_and_revoke_are_recorded_with_the_staff_actor(people, feature):
    support, customer = people
    staff = Actor(kind="user", user_id=support.pk)
    expires = timezone.now() + timedelta(days=10)
    (granted,) = services.entitlement_grant_manual(
        user=customer, granted_by=support, actor=staff, reason="goodwill, ticket 42",
        feature_key=feature.lookup_key, expires_at=expires,
    )  # fmt: skip
    services.entitlement_revoke(
        entitlement=granted, actor=staff, reason="ticket 43: refunded", revoked_by=support
    )
    (grant,) = rows("entitlements.grant.created")
    (revoke,) = rows("entitlements.grant.revoked")
    for row in (grant, revoke):
        assert (row.actor_type, row.actor_id, row.actor_name, row.actor_role) == (
            "user", str(support.pk), "sue", "SUPPORT",
        )  # fmt: skip
        assert (row.target_type, row.target_id) == ("entitlement", str(granted.pk))
        assert row.meta["feature"] == "audit-test-signals"
        assert row.meta["user_id"] == customer.pk
        assert row.meta["source"] == "manual"
    assert grant.reason == "goodwill, ticket 42"
    assert grant.meta["expires_at"] == expires.isoformat()
    assert revoke.reason == "ticket 43: refunded"
    assert "carl" not in str(grant.meta) + grant.target_repr  # ids, never names


def test_stripe_grant_extension_and_lapse_are_recorded(people, feature):
    _, customer = people
    stripe = Actor(kind="stripe")
    start = timezone.now() - timedelta(days=40)
    (entitlement,) = services.entitlements_create([services.entitlement_new(
        user=customer, feature=feature, source="stripe", expires_at=start + timedelta(days=30),
        reason="invoice.paid", stripe_subscription_id="sub_1MowQVLkdIwHu7ixeRlqHVzs",
        source_event_id="evt_grant_1", starts_at=start,
    )], actor=stripe)  # fmt: skip
    previous = entitlement.expires_at
    services.entitlement_extend(
        entitlement=entitlement, expires_at=previous + timedelta(days=5), actor=stripe,
        reason="invoice.paid", source_event_id="evt_extend_1",
    )  # fmt: skip
    assert services.entitlement_lapses_record() >= 1
    (grant,) = rows("entitlements.grant.created")
    (extend,) = rows("entitlements.grant.extended")
    (lapse,) = rows("entitlements.grant.lapsed")
    assert (grant.actor_type, grant.actor_role, grant.stripe_event_id) == (
        "stripe", "SYSTEM", "evt_grant_1",
    )  # fmt: skip
    assert grant.meta["subscription"] == "sub_1MowQVLkdIwHu7ixeRlqHVzs"
    assert extend.meta["previous_expires_at"] == previous.isoformat()
    assert extend.stripe_event_id == "evt_extend_1"
    assert (lapse.actor_type, lapse.reason, lapse.target_id) == (
        "system", "expired", str(entitlement.pk),
    )  # fmt: skip


def test_plan_edit_is_recorded_with_the_changed_fields(people, feature):
    support, _ = people
    plan = Plan(code="audit-test-pro", name="Pro")
    services.plan_save(
        plan=plan, changed_fields=["name"], features=[feature],
        actor=Actor(kind="user", user_id=support.pk),
    )  # fmt: skip
    (row,) = rows("entitlements.plan.changed")
    assert (row.target_type, row.target_id, row.target_repr) == ("plan", str(plan.pk), plan.code)
    assert row.meta == {"plan": "audit-test-pro", "changed_fields": ["created", "features", "name"]}


def test_a_failed_change_leaves_no_audit_row(people, feature):
    _, customer = people
    with pytest.raises(RuntimeError), transaction.atomic():
        services.entitlements_create([services.entitlement_new(
            user=customer, feature=feature, source="manual", expires_at=None,
            reason="rolled back",
        )], actor=Actor(kind="system"))  # fmt: skip
        raise RuntimeError("the surrounding change failed")
    assert rows("entitlements.grant.created") == []
