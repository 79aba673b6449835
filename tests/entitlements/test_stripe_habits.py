"""Stripe's habits beyond ordering: a same-second tie the payloads cannot settle is fetched in
the background, support's revokes stick, trials and pauses, and events of the other mode or of
a connected account. Only Stripe's HTTP API is faked (billing/simulator/fake_api.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from billing import tasks as billing_tasks
from config.context import Actor
from entitlements import blocks, services, tasks
from entitlements.errors import NothingToRevoke
from entitlements.models import Entitlement, FeatureBlock, SubscriptionState
from entitlements.stripe_sync import FETCH_REASON
from tests.billing.conftest import metric
from tests.entitlements.conftest import DAY, T0, deliver

pytestmark = pytest.mark.django_db

PREMIUM = {"signals_basic", "signals_premium", "advanced_analytics"}
SUPPORT = Actor(kind="system")


def live(user) -> dict:
    rows = Entitlement.objects.filter(user=user, revoked_at__isnull=True).select_related("feature")
    return {row.feature.lookup_key: row.expires_at for row in rows}


def when(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _dunning_flip(customer, *, at):
    """Two updates in one second whose payloads contradict each other: each says it changed
    from the other's status (past_due -> active and active -> past_due)."""
    recovered = customer.subscription(
        "updated", created=at, status="active", previous_attributes={"status": "past_due"}
    )
    failed = customer.subscription(
        "updated", created=at, status="past_due", previous_attributes={"status": "active"}
    )
    return recovered, failed


# --- 1. A tie the payloads cannot order is settled by fetching the subscription ---------------


def test_an_undecidable_tie_keeps_the_best_guess_then_the_fetch_settles_it(
    make_user, customer, fake_stripe, django_capture_on_commit_callbacks
):
    user = make_user()
    deliver(customer.checkout(user, created=T0 - 100))
    deliver(customer.subscription(created=T0 - 100))
    fetched = metric("tollgate_billing_subscription_fetches_total", outcome="fetched")
    recovered, failed = _dunning_flip(customer, at=T0)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        deliver(recovered)
        deliver(failed)
    state = SubscriptionState.objects.get(stripe_subscription_id=customer.subscription_id)
    guess = state.value("status")
    assert guess in {"active", "past_due"} and state.unsettled_second == T0
    assert live(user)  # the best guess is applied at once
    # Stripe's own copy says the other thing: it wins, in the background task after commit.
    truth = "past_due" if guess == "active" else "active"
    obj = customer.subscription("updated", created=T0, status=truth)["data"]["object"]
    fake_stripe.put(obj, version=2**62)
    assert callbacks
    for callback in callbacks:
        callback()
    state.refresh_from_db()
    assert (state.value("status"), state.unsettled_second) == (truth, None)
    assert ("GET", f"/v1/subscriptions/{customer.subscription_id}") in fake_stripe.requests
    assert metric("tollgate_billing_subscription_fetches_total", outcome="fetched") == fetched + 1
    expiries = set(live(user).values())
    if truth == "active":
        assert expiries == {when(T0 + 33 * DAY)}  # the period's end and the grace days
    else:  # past due since Stripe said so (the fetch): the grace days run from then
        (expiry,) = expiries
        assert when(T0 + 3 * DAY) <= expiry <= timezone.now() + timedelta(days=3)
    # The changes the fetch caused say so in the trail.
    changed = AuditEvent.objects.filter(action="entitlements.grant.extended", reason=FETCH_REASON)
    assert changed.count() == len(PREMIUM)


def test_while_stripe_is_unreachable_the_best_guess_stands_and_the_fetch_retries(
    make_user, customer, fake_stripe, django_capture_on_commit_callbacks
):
    user = make_user()
    deliver(customer.checkout(user, created=T0 - 100))
    deliver(customer.subscription(created=T0 - 100))
    fake_stripe.mode = "500"
    retried = metric("tollgate_billing_subscription_fetches_total", outcome="retry")
    recovered, failed = _dunning_flip(customer, at=T0)
    with django_capture_on_commit_callbacks(execute=True):
        deliver(recovered)
        deliver(failed)
    state = SubscriptionState.objects.get(stripe_subscription_id=customer.subscription_id)
    assert state.unsettled_second == T0  # still waiting for Stripe
    assert state.value("status") in {"active", "past_due"}  # the best guess, applied at once
    assert live(user)  # entitlements were never blocked by the outage
    attempts = [r for r in fake_stripe.requests if r[1].startswith("/v1/subscriptions/")]
    assert len(attempts) >= 3  # the first call and its retries, each calling Stripe
    assert metric("tollgate_billing_subscription_fetches_total", outcome="retry") >= retried + 2

    # Stripe answers again: the next fetch settles it.
    fake_stripe.mode = "ok"
    truth = customer.subscription("updated", created=T0, status="past_due")["data"]["object"]
    fake_stripe.put(truth, version=2**62)
    billing_tasks.fetch_subscription.delay(customer.subscription_id)
    state.refresh_from_db()
    assert (state.value("status"), state.unsettled_second) == ("past_due", None)


def test_without_a_stripe_account_nothing_is_fetched(make_user, customer, settings):
    settings.BILLING_STRIPE_MIRROR_ENABLED = False  # the offline placeholder key of make run
    disabled = metric("tollgate_billing_subscription_fetches_total", outcome="disabled")
    billing_tasks.fetch_subscription.delay("sub_never_fetched")
    assert metric("tollgate_billing_subscription_fetches_total", outcome="disabled") == disabled + 1


# --- 3. Support's revoke of a Stripe grant sticks -------------------------------------------


@pytest.fixture
def subscribed(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription(created=T0))
    return user


def test_a_revoked_stripe_grant_stays_revoked_through_renewals_and_plan_changes(
    subscribed, customer, support_user
):
    services.entitlements_revoke_for_user(
        user=subscribed, feature_key="signals_premium", reason="chargeback ticket 12",
        revoked_by=support_user, actor=Actor(kind="user", user_id=support_user.pk),
    )  # fmt: skip
    block = FeatureBlock.objects.get(user=subscribed, feature__lookup_key="signals_premium")
    assert (block.reason, block.created_by, block.lifted_at) == (
        "chargeback ticket 12", support_user, None
    )  # fmt: skip
    deliver(customer.invoice("paid", created=T0 + 60, period_end=T0 + 60 * DAY))
    deliver(customer.subscription("updated", created=T0 + 61, plan="vip"))
    assert "signals_premium" not in live(subscribed)
    assert {"vip_support", "copy_trading", "signals_basic"} <= set(live(subscribed))
    # The block itself is in the trail, with its reason.
    row = AuditEvent.objects.get(action="entitlements.block.created")
    assert row.reason == "chargeback ticket 12"
    assert row.meta["feature"] == "signals_premium"


def test_a_manual_grant_still_works_while_blocked(subscribed, support_user):
    services.entitlements_revoke_for_user(
        user=subscribed, feature_key="signals_premium", reason="abuse",
        revoked_by=support_user, actor=SUPPORT,
    )  # fmt: skip
    services.entitlement_grant_manual(
        user=subscribed, feature_key="signals_premium", reason="goodwill", granted_by=support_user,
        actor=SUPPORT,
    )  # fmt: skip
    assert "signals_premium" in live(subscribed)


def test_lifting_a_block_brings_stripes_grant_back_at_once(subscribed, customer, support_user):
    services.entitlements_revoke_for_user(
        user=subscribed, feature_key="signals_premium", reason="abuse",
        revoked_by=support_user, actor=SUPPORT,
    )  # fmt: skip
    blocks.feature_unblock(
        user=subscribed, feature_key="signals_premium", lifted_by=support_user,
        actor=SUPPORT, reason="resolved",
    )  # fmt: skip
    assert "signals_premium" in live(subscribed)
    lifted = AuditEvent.objects.get(action="entitlements.block.lifted")
    assert lifted.reason == "resolved"
    granted_again = AuditEvent.objects.filter(
        action="entitlements.grant.created", reason="resolved"
    )
    assert granted_again.count() == 1
    with pytest.raises(NothingToRevoke):
        blocks.feature_unblock(
            user=subscribed, feature_key="signals_premium", lifted_by=support_user,
            actor=SUPPORT, reason="twice",
        )  # fmt: skip


def test_a_block_with_an_end_lifts_itself_on_the_beat(subscribed, customer, support_user):
    ends = timezone.now() + timedelta(hours=1)
    services.entitlements_revoke_for_user(
        user=subscribed, feature_key="signals_premium", reason="cool-off",
        revoked_by=support_user, actor=SUPPORT, block_until=ends,
    )  # fmt: skip
    assert tasks.expire_blocks.delay().get() == 0  # not yet
    assert blocks.blocks_expire(now=ends + timedelta(seconds=1)) == 1
    assert "signals_premium" in live(subscribed)
    assert blocks.blocks_expire(now=ends + timedelta(seconds=2)) == 0  # once


def test_revoking_a_manual_grant_blocks_nothing(subscribed, support_user):
    services.entitlement_grant_manual(
        user=subscribed, feature_key="copy_trading", reason="trial", granted_by=support_user,
        actor=SUPPORT,
    )  # fmt: skip
    services.entitlements_revoke_for_user(
        user=subscribed, feature_key="copy_trading", reason="over", revoked_by=support_user,
        actor=SUPPORT,
    )  # fmt: skip
    assert not FeatureBlock.objects.exists()


def test_the_cli_and_the_api_show_blocks(subscribed, support_user, client, capsys):
    services.entitlements_revoke_for_user(
        user=subscribed, feature_key="signals_premium", reason="abuse",
        revoked_by=support_user, actor=SUPPORT,
    )  # fmt: skip
    call_command("entitlements", "show", subscribed.username)
    shown = capsys.readouterr().out
    assert '"blocks": [{"feature": "signals_premium", "reason": "abuse"' in shown
    client.force_login(subscribed)
    body = client.get("/api/entitlements/").json()
    assert [(b["feature"], b["reason"]) for b in body["blocks"]] == [("signals_premium", "abuse")]
    call_command(
        "entitlements", "unblock", subscribed.username, "--feature", "signals_premium",
        "--reason", "appeal won", "--by", support_user.username,
    )  # fmt: skip
    assert "signals_premium" in live(subscribed)


# --- 4. Trials and pauses --------------------------------------------------------------------


def test_a_trial_grants_until_trial_end_without_grace(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    trial_end = T0 + 7 * DAY
    deliver(customer.subscription(status="trialing", trial_end=trial_end, period_end=trial_end))
    assert live(user) == dict.fromkeys(PREMIUM, when(trial_end))


def test_a_trial_that_ends_paused_revokes_and_resuming_grants_again(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    trial_end = T0 + 7 * DAY
    deliver(customer.subscription(status="trialing", trial_end=trial_end, period_end=trial_end))
    deliver(customer.subscription("trial_will_end", created=T0 + 4 * DAY, status="trialing",
                                  trial_end=trial_end, period_end=trial_end))  # fmt: skip
    assert live(user) == dict.fromkeys(PREMIUM, when(trial_end))  # recorded, changes nothing
    deliver(customer.subscription("paused", created=trial_end, status="paused",
                                  previous_attributes={"status": "trialing"}))  # fmt: skip
    assert live(user) == {}
    deliver(customer.subscription("resumed", created=trial_end + DAY, status="active",
                                  period_end=trial_end + 31 * DAY,
                                  previous_attributes={"status": "paused"}))  # fmt: skip
    assert set(live(user)) == PREMIUM
    recorded = AuditEvent.objects.filter(action="billing.subscription.trial_will_end")
    assert recorded.count() == 1


def test_an_expired_incomplete_subscription_grants_nothing(make_user, customer):
    user = make_user()
    deliver(customer.checkout(user))
    deliver(customer.subscription(status="incomplete", created=T0))
    deliver(customer.subscription("updated", status="incomplete_expired", created=T0 + DAY,
                                  previous_attributes={"status": "incomplete"}))  # fmt: skip
    assert live(user) == {}


def test_nobody_lifts_a_block_on_their_own_account(subscribed, customer, support_user):
    from entitlements.errors import SelfGrantRefused

    subscribed.is_staff = True
    subscribed.save(update_fields=["is_staff"])
    services.entitlements_revoke_for_user(
        user=subscribed, feature_key="signals_premium", reason="abuse",
        revoked_by=support_user, actor=SUPPORT,
    )  # fmt: skip
    block = FeatureBlock.objects.get(user=subscribed)
    with pytest.raises(SelfGrantRefused):
        blocks.feature_unblock(
            user=subscribed, feature_key="signals_premium", lifted_by=subscribed,
            actor=Actor(kind="user", user_id=subscribed.pk), reason="my own",
        )  # fmt: skip
    with pytest.raises(SelfGrantRefused):
        blocks.blocks_lift_selected(
            block_ids=[block.pk], lifted_by=subscribed,
            actor=Actor(kind="user", user_id=subscribed.pk), reason="my own",
        )  # fmt: skip
    block.refresh_from_db()
    assert block.lifted_at is None and "signals_premium" not in live(subscribed)
    refused = AuditEvent.objects.filter(action="entitlements.grant.refused")
    assert refused.count() == 2
