"""Support's command line and reconciliation."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from entitlements.models import Entitlement, SubscriptionState
from tests.entitlements.conftest import DAY, T0, deliver
from tests.servers import database_url_of, require_postgres

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_show_prints_active_features_as_json(make_user):
    trader = make_user(username="ann", email="ann@example.com")
    run("entitlements", "grant", "ann", "--feature", "copy_trading", "--expires", "2099-05-01",
        "--reason", "ticket 3")  # fmt: skip
    shown = json.loads(run("entitlements", "show", "ann@example.com"))
    assert shown == {
        "entitlements": [
            {"feature": "copy_trading", "source": "manual",
             "expires_at": "2099-05-01T23:59:59.999999+00:00"}
        ],
        "blocks": [],
    }  # fmt: skip
    assert Entitlement.objects.get(user=trader).granted_by is None


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_grant_and_revoke_refuse_without_a_reason(make_user, reason):
    trader = make_user(username="bob")
    extra = [] if reason is None else ["--reason", reason]
    with pytest.raises(CommandError, match="--reason"):
        call_command("entitlements", "grant", "bob", "--plan", "vip", *extra)
    assert not Entitlement.objects.exists()
    run("entitlements", "grant", "bob", "--plan", "free", "--reason", "ok")
    with pytest.raises(CommandError, match="--reason"):
        call_command("entitlements", "revoke", "bob", "--all-manual", *extra)
    assert Entitlement.objects.filter(user=trader, revoked_at__isnull=True).count() == 1


def _manage(*args: str) -> subprocess.CompletedProcess:
    """manage.py in a new process, on pytest-django's test database (committed rows only)."""
    require_postgres(connection)
    env = {**os.environ, "DATABASE_URL": database_url_of(connection), "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "manage.py", *args], capture_output=True, text=True, env=env, cwd=ROOT,
        check=False,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_refusal_exits_non_zero_from_the_command_line(make_user):
    carl = make_user(username="carl")
    result = _manage("entitlements", "grant", "carl", "--feature", "copy_trading")
    assert result.returncode != 0
    assert "--reason is required" in result.stderr
    assert not Entitlement.objects.filter(user=carl).exists()
    # The same process with a reason writes to this database: the check above could fail.
    granted = _manage("entitlements", "grant", "carl", "--feature", "copy_trading", "--reason", "t")
    assert granted.returncode == 0, granted.stderr
    assert Entitlement.objects.filter(user=carl).count() == 1


def test_revoke_all_manual_leaves_stripe_grants(make_user, customer, support_user):
    trader = make_user(username="dora")
    deliver(customer.checkout(trader))
    deliver(customer.subscription(plan="free"))
    run("entitlements", "grant", "dora", "--feature", "vip_support", "--reason", "x",
        "--by", support_user.username)  # fmt: skip
    assert Entitlement.objects.get(source="manual").granted_by == support_user
    out = run("entitlements", "revoke", "dora", "--all-manual", "--reason", "cleanup")
    assert "1 entitlement" in out
    live = Entitlement.objects.filter(user=trader, revoked_at__isnull=True)
    assert [(row.feature.lookup_key, row.source) for row in live] == [("signals_basic", "stripe")]


def test_unknown_user_and_feature_are_errors(make_user):
    make_user(username="eve")
    with pytest.raises(CommandError, match="No single user"):
        call_command("entitlements", "show", "nobody")
    with pytest.raises(CommandError, match="gold"):
        call_command("entitlements", "grant", "eve", "--feature", "gold", "--reason", "x")


def test_reconcile_reports_then_fixes_drift(make_user, customer, sent):
    trader = make_user()
    deliver(customer.checkout(trader))
    deliver(customer.subscription(period_end=T0 + 30 * DAY))
    # Drift: someone removed a row and moved an expiry behind the services' back.
    Entitlement.objects.filter(feature__lookup_key="signals_basic").delete()
    Entitlement.objects.filter(feature__lookup_key="signals_premium").update(
        expires_at=datetime(2099, 1, 1, tzinfo=UTC)
    )
    report = run("reconcile_entitlements", "--no-progress")
    assert "signals_basic: wanted but missing" in report
    assert "signals_premium: expires 2099-01-01" in report
    assert "1 subscription(s) with drift found" in report
    assert Entitlement.objects.filter(user=trader).count() == 2
    sent.clear()
    out = run("reconcile_entitlements", "--fix", "--customer", customer.customer_id)
    assert "fixed" in out
    expected = datetime.fromtimestamp(T0 + 33 * DAY, tz=UTC)
    live = Entitlement.objects.filter(user=trader, revoked_at__isnull=True)
    assert {row.feature.lookup_key: row.expires_at for row in live} == {
        "signals_basic": expected, "signals_premium": expected, "advanced_analytics": expected,
    }  # fmt: skip
    assert {kwargs["reason"] for _, kwargs in sent} == {"reconciliation"}
    assert {kwargs["actor"].kind for _, kwargs in sent} == {"system"}
    assert "0 subscription(s)" in run("reconcile_entitlements", "--no-progress")


def test_reconcile_filters_by_customer(make_user, customer):
    trader = make_user()
    deliver(customer.checkout(trader))
    deliver(customer.subscription())
    Entitlement.objects.all().delete()
    assert SubscriptionState.objects.count() == 1
    assert "0 subscription(s)" in run("reconcile_entitlements", "--customer", "cus_other")
    assert "1 subscription(s)" in run("reconcile_entitlements", "--customer",
                                      customer.customer_id)  # fmt: skip


def test_reconcile_replays_billings_event_log_into_lost_state(make_user, customer):
    from billing.models import StripeEvent

    trader = make_user()
    lifecycle = [
        customer.checkout(trader),
        customer.subscription(period_end=T0 + 30 * DAY, created=T0 + 1),
        customer.invoice("paid", created=T0 + 2, period_end=T0 + 60 * DAY),
    ]
    for payload in lifecycle:
        deliver(payload)
        StripeEvent.objects.create(
            event_id=payload["id"], type=payload["type"], created=payload["created"],
            customer_id=customer.customer_id, payload=payload, status="applied",
        )  # fmt: skip
    SubscriptionState.objects.all().delete()
    Entitlement.objects.all().delete()
    out = run("reconcile_entitlements", "--replay-events", "--fix", "--no-progress")
    assert "Replayed 3 stored event(s)" in out
    expected = datetime.fromtimestamp(T0 + 63 * DAY, tz=UTC)
    live = Entitlement.objects.filter(user=trader, revoked_at__isnull=True)
    assert {row.feature.lookup_key: row.expires_at for row in live} == {
        "signals_basic": expected, "signals_premium": expected, "advanced_analytics": expected,
    }  # fmt: skip
