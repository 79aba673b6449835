"""The lapse task, the seeded plans and the Support group."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone

from config.context import Actor
from entitlements import services, tasks
from entitlements.models import Entitlement, Plan
from staff.roles import SUPPORT, roles_seed

pytestmark = pytest.mark.django_db


def test_lapses_are_recorded_once_each(make_user, sent):
    trader = make_user()
    soon = timezone.now() + timedelta(hours=1)
    row = services.entitlement_grant_manual(
        user=trader, granted_by=None, actor=Actor(), reason="trial", feature_key="signals_basic",
        expires_at=soon,
    )[0]  # fmt: skip
    assert tasks.record_lapses.delay().get() == 0
    assert services.entitlement_lapses_record(now=soon + timedelta(seconds=1)) == 1
    assert services.entitlement_lapses_record(now=soon + timedelta(days=1)) == 0
    lapses = [kwargs for name, kwargs in sent if name == "lapsed"]
    assert [(kwargs["entitlement"].pk, kwargs["actor"].kind) for kwargs in lapses] == [
        (row.pk, "system")
    ]
    assert Entitlement.objects.get(pk=row.pk).lapse_recorded_at is not None


def test_lapse_task_is_scheduled(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["entitlements-record-lapses"]
    assert entry["task"] == tasks.record_lapses.name


def test_plans_are_seeded_as_in_the_issue():
    plans = {
        plan.code: set(plan.features.values_list("lookup_key", flat=True))
        for plan in Plan.objects.all()
    }
    everything = {"signals_basic", "signals_premium", "advanced_analytics", "vip_support",
                  "copy_trading"}  # fmt: skip
    assert plans == {
        "free": {"signals_basic"},
        "premium": {"signals_basic", "signals_premium", "advanced_analytics"},
        "vip": everything,
        "enterprise": everything,
    }
    assert {plan.default_duration_days for plan in Plan.objects.all()} == {30}


def test_support_group_is_seeded_idempotently():
    group = Group.objects.get(name="Support")
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {f"entitlements.{codename}" for codename in codenames} == set(SUPPORT.permissions)
    group.permissions.clear()
    call_command("migrate", "entitlements", verbosity=0)  # post_migrate runs the seeding again
    roles_seed()
    assert set(group.permissions.values_list("codename", flat=True)) == codenames
    assert Group.objects.filter(name="Support").count() == 1


def test_database_keeps_rows_consistent(make_user):
    from django.db import IntegrityError, transaction

    trader = make_user()
    feature = Plan.objects.get(code="free").features.get()
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        Entitlement.objects.create(user=trader, feature=feature, source="stripe", starts_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Entitlement.objects.create(user=trader, feature=feature, source="manual", starts_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Entitlement.objects.create(user=trader, feature=feature, source="manual", reason="x",
                                   starts_at=now, revoked_at=now)  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        Entitlement.objects.create(user=trader, feature=feature, source="manual", reason="x",
                                   starts_at=now, expires_at=now - timedelta(days=1))  # fmt: skip
    stripe_row = {"user": trader, "feature": feature, "source": "stripe", "starts_at": now,
                  "stripe_subscription_id": "sub_1"}  # fmt: skip
    Entitlement.objects.create(**stripe_row, expires_at=now + timedelta(days=1))
    with pytest.raises(IntegrityError), transaction.atomic():
        Entitlement.objects.create(**stripe_row, expires_at=now + timedelta(days=2))


def test_system_check_refuses_a_non_positive_cache_lifetime(settings):
    from entitlements.checks import entitlements_settings_check

    assert entitlements_settings_check(None) == []
    settings.ENTITLEMENTS_CACHE_SECONDS = 0
    assert [error.id for error in entitlements_settings_check(None)] == ["entitlements.E001"]


def test_an_emptied_catalogue_is_seeded_again_but_an_edited_one_is_kept():
    from entitlements.models import PlanFeature

    PlanFeature.objects.filter(plan__code="free").delete()  # a staff edit
    call_command("migrate", "entitlements", verbosity=0)
    assert not Plan.objects.get(code="free").features.exists()
    PlanFeature.objects.all().delete()
    Plan.objects.all().delete()
    call_command("migrate", "entitlements", verbosity=0)
    assert set(Plan.objects.values_list("code", flat=True)) == {
        "free", "premium", "vip", "enterprise"
    }  # fmt: skip
    assert Plan.objects.get(code="vip").features.count() == 5
