"""The whole path, as Stripe drives it: signed webhook -> billing -> entitlements -> audit.

Nothing between the HTTP request and the database is replaced: the endpoint is configured by
its management command, deliveries are signed by the stripe SDK, processing runs in the
(eager) Celery task on commit, and the audit chain is verified by its own command.
"""

import io
import json
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.models import AuditEvent
from billing.rejections import rejection_counts_flush
from entitlements import access
from tests.audit_trail import audit_seal
from tests.stripe_fixtures import event, resource, signed

pytestmark = pytest.mark.django_db
SECRET = "whsec_e2e_" + "5" * 24
DAY = 86400


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def webhook_path():
    out = io.StringIO()
    call_command("stripe_webhook_endpoint", "--secret", SECRET, stdout=out)
    path = out.getvalue().strip().splitlines()[-1]
    assert path.startswith("/stripe/webhook/")
    return path


@pytest.fixture
def deliver(client, webhook_path, django_capture_on_commit_callbacks):
    def send(payload, secret=SECRET):
        body, header = signed(payload, secret)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                webhook_path, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
            )

    return send


def subscription(status, plan, *, period_end, cancel_at_period_end=False):
    sub = resource(
        "subscription",
        id="sub_e2e1", customer="cus_e2e1", status=status, metadata={},
        cancel_at_period_end=cancel_at_period_end, cancel_at=None, canceled_at=None,
        ended_at=None,
    )  # fmt: skip
    item = sub["items"]["data"][0]
    item.update(subscription="sub_e2e1", current_period_start=period_end - 30 * DAY,
                current_period_end=period_end)  # fmt: skip
    item["price"].update(id=f"price_{plan}", lookup_key=plan, metadata={})
    return sub


def checkout(user):
    return resource(
        "checkout.session",
        id="cs_e2e1", customer="cus_e2e1", subscription="sub_e2e1", mode="subscription",
        client_reference_id=str(user.pk), status="complete", payment_status="paid",
        amount_total=2900, currency="usd", metadata={},
    )  # fmt: skip


def has_feature(user, key):
    """As product code sees it in a new request: the per-request memo starts empty."""
    access.forget_request_memo(user)
    return access.has_feature(user, key)


def actions_for(event_id):
    return set(AuditEvent.objects.filter(stripe_event_id=event_id).values_list("action", flat=True))


def test_subscription_lifecycle_end_to_end(deliver, django_user_model):
    alice = django_user_model.objects.create_user(username="alice")
    now = int(time.time())
    period_end = now + 30 * DAY

    # Stripe often sends the subscription before the checkout session: it is parked, not lost.
    created = event(
        "customer.subscription.created",
        subscription("active", "premium", period_end=period_end),
        created=now - 10,
    )
    response = deliver(created)
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert not has_feature(alice, "signals_premium")

    completed = event("checkout.session.completed", checkout(alice), created=now - 9)
    assert deliver(completed).status_code == 200
    assert has_feature(alice, "signals_premium")
    assert has_feature(alice, "advanced_analytics")
    assert not has_feature(alice, "copy_trading")
    assert "billing.payment.completed" in actions_for(completed["id"])

    # A replay of a delivery changes nothing and is counted.
    audit_rows = AuditEvent.objects.count()
    replays = metric("billing_webhook_replay_block_total", reason="duplicate_event")
    again = deliver(completed)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert AuditEvent.objects.count() == audit_rows
    assert metric("billing_webhook_replay_block_total", reason="duplicate_event") == replays + 1

    # Upgrade to vip swaps in the vip features.
    upgraded = event(
        "customer.subscription.updated",
        subscription("active", "vip", period_end=period_end),
        created=now - 5,
    )
    assert deliver(upgraded).status_code == 200
    assert has_feature(alice, "copy_trading") and has_feature(alice, "vip_support")

    # An older event arriving late (the premium state at now-8) does not undo the upgrade.
    stale = event(
        "customer.subscription.updated",
        subscription("active", "premium", period_end=period_end),
        created=now - 8,
    )
    assert deliver(stale).status_code == 200
    assert has_feature(alice, "copy_trading")

    # Cancellation ends what Stripe granted.
    deleted = event(
        "customer.subscription.deleted",
        subscription("canceled", "vip", period_end=period_end),
        created=now - 1,
    )
    assert deliver(deleted).status_code == 200
    assert not has_feature(alice, "signals_premium")
    assert not has_feature(alice, "copy_trading")

    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"entitlements.grant.created", "entitlements.grant.revoked"} <= actions

    # The trail written along the way is an intact hash chain.
    out = io.StringIO()
    audit_seal()  # as the sealer does once the writing transactions have committed
    trail_rows = AuditEvent.objects.count()
    call_command("audit_verify", stdout=out, stderr=io.StringIO())
    summary = json.loads(out.getvalue())  # a broken chain raises CommandError instead
    assert (summary["ok"], summary["rows"]) == (True, trail_rows)


def test_forged_delivery_is_refused_recorded_and_changes_nothing(deliver, django_user_model):
    mallory = django_user_model.objects.create_user(username="mallory")
    forged = event("checkout.session.completed", checkout(mallory))
    before = metric("billing_webhook_invalid_sig_total")
    response = deliver(forged, secret="whsec_not_the_endpoint_secret_000")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert metric("billing_webhook_invalid_sig_total") == before + 1
    assert not has_feature(mallory, "signals_premium")
    # The trail gets one row per address, problem and minute once the minute has closed.
    rejection_counts_flush(now=timezone.now() + timedelta(minutes=3))
    rejected = AuditEvent.objects.get(action="billing.webhook.rejected", outcome="failure")
    assert rejected.meta["count"] == 1
