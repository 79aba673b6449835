"""The Stripe simulator against a real server: pytest-django's live_server serves the test
database in a thread and Celery is eager, so each delivery is verified, stored and applied
(billing -> entitlements -> audit) before the server answers."""

import http.server
import json
import random
import re
import threading
import time
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from djstripe.models import WebhookEndpoint
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.models import StripeEvent, WebhookSecret
from billing.simulator import local, run, scenarios
from billing.simulator.sender import Sender
from billing.simulator.stripe_objects import PLAN_AMOUNTS
from billing.verification import verify_signature
from entitlements.access import has_feature
from tests.servers import free_port  # a port nobody listens on: connections refused

# The server thread commits, so these tests flush the database afterwards (post_migrate then
# seeds the groups and the plan catalogue again for the tests that follow).
served = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(transactional_db, live_server):
    """The live server; committed audit rows are cleared before the flush by the shared
    fixture in tests/conftest.py."""
    return live_server


def simulate(server, *names, customers=1, seed=7, secret=None, retries=1):
    """Plan and deliver scenarios through the local endpoint, as the command does."""
    endpoint, known_secret = local.simulator_endpoint()
    url = f"{server.url}/stripe/webhook/{endpoint.djstripe_uuid}/"
    simulation = run.plan(names=list(names), customers=customers, seed=seed)
    sender = Sender(
        url=url, secret=secret or known_secret, retries=retries, backoff=0.01, timeout=60
    )
    run.execute(simulation, sender=sender)
    return simulation


def user(name: str):
    return get_user_model().objects.get(username=name)


@served
def test_checkout_command_grants_premium_through_real_http(server, capsys):
    call_command(
        "stripe_simulate", "checkout", "--base-url", server.url, "--customers", "2",
        "--seed", "1", verbosity=0,
    )  # fmt: skip

    out = capsys.readouterr().out
    # A checkout is four events in one second: session, created (incomplete), invoice, active.
    assert re.search(r"^HTTP 200\s+8$", out, re.MULTILINE)
    assert re.search(r"^lost\s+0$", out, re.MULTILINE)
    assert "Every delivery was answered 2xx." in out
    assert f"{server.url}/admin/entitlements/entitlement/ (entitlements)" in out
    rows = StripeEvent.objects.order_by("created", "event_id")
    assert rows.count() == 8
    assert set(rows.values_list("status", flat=True)) == {StripeEvent.Status.APPLIED}
    assert Counter(rows.values_list("type", flat=True)) == {
        "checkout.session.completed": 2, "customer.subscription.created": 2, "invoice.paid": 2,
        "customer.subscription.updated": 2,
    }  # fmt: skip
    for number in (1, 2):
        customer = user(f"demo-checkout-{number}")
        assert not customer.has_usable_password()
        assert has_feature(customer, "signals_premium")
        assert has_feature(customer, "advanced_analytics")
        assert not has_feature(customer, "vip_support")


@served
def test_every_scenario_answers_2xx_and_fills_the_inbox(server):
    simulation = simulate(server, *scenarios.SCENARIO_NAMES)

    summary = simulation.summary
    assert summary.lost == []
    assert len(summary.answers) == simulation.deliveries
    sent = {event["id"] for scenario in simulation.scenarios for event in scenario.events}
    assert set(StripeEvent.objects.values_list("event_id", flat=True)) == sent
    assert StripeEvent.objects.exclude(status=StripeEvent.Status.APPLIED).count() == 0
    # One customer per scenario: what each story leaves the demo user with.
    expected = {
        "checkout": {"signals_premium": True, "vip_support": False},
        "trial": {"signals_premium": True},
        "trial-ends-paused": {"signals_premium": False, "signals_basic": False},
        "renewal": {"signals_premium": True},
        "upgrade": {"vip_support": True, "copy_trading": True},
        "downgrade": {"signals_premium": True, "vip_support": False},
        "payment-failure-recovery": {"signals_premium": True},
        "payment-failure-lapse": {"signals_premium": False, "signals_basic": False},
        "cancel-at-period-end": {"signals_premium": True},
        "refund": {"signals_premium": False},
        "dispute": {"signals_premium": False},
        "out-of-order": {"vip_support": True},
        "duplicate-storm": {"signals_premium": True},
    }
    got = {
        name: {key: has_feature(user(f"demo-{name}-1"), key) for key in features}
        for name, features in expected.items()
    }
    assert got == expected


@served
def test_the_fake_stripe_api_fills_dj_stripes_mirror_consistently(server, fake_stripe, capsys):
    """What `make run` does: the simulator hands its objects to the fake Stripe API, and
    dj-stripe's mirror, fetching them from it, fills with each object's latest state."""
    from djstripe.models import Customer, Invoice, Subscription

    call_command(
        "stripe_simulate", "all", "--base-url", server.url, "--stripe-api", fake_stripe.url,
        "--seed", "3", verbosity=0,
    )  # fmt: skip

    assert "Every delivery was answered 2xx." in capsys.readouterr().out
    rows = StripeEvent.objects.all()
    assert rows.count() > 50
    assert set(rows.values_list("mirror_status", flat=True)) == {"synced"}
    mirrored = {sub.id: sub for sub in Subscription.objects.select_related("customer")}
    assert len(mirrored) == len(scenarios.SCENARIO_NAMES)
    for sub_id, sub in mirrored.items():
        latest = fake_stripe.get(sub_id)
        assert (sub.status, sub.customer.id) == (latest["status"], latest["customer"])
    assert {sub.status for sub in mirrored.values()} >= {"active", "canceled"}
    lapsed = user("demo-payment-failure-lapse-1")
    assert Customer.objects.get(subscriber=lapsed).subscriptions.get().status == "canceled"
    assert Invoice.objects.count() >= len(scenarios.SCENARIO_NAMES)
    # Nothing was asked of the fake that it had not been handed.
    assert not [path for _, path in fake_stripe.requests if fake_stripe.get(path.split("/")[-1])
                is None and path.count("/") == 3 and path != "/v1/account"]  # fmt: skip


@served
def test_duplicate_storm_stores_one_row_per_event_id(server):
    simulation = simulate(server, "duplicate-storm", customers=2)

    [storm] = simulation.scenarios
    summary = simulation.summary
    assert summary.lost == []
    assert len(summary.answers) == len(storm.events) * scenarios.STORM_COPIES
    assert summary.by_outcome() == {
        "accepted": len(storm.events),
        "duplicate": len(storm.events) * (scenarios.STORM_COPIES - 1),
    }
    ids = list(StripeEvent.objects.values_list("event_id", flat=True))
    assert sorted(ids) == sorted(event["id"] for event in storm.events)


@served
def test_wrong_secret_is_lost_and_reported_by_problem_type(server):
    simulation = simulate(server, "checkout", secret="whsec_not_the_endpoints_secret", retries=1)

    summary = simulation.summary
    assert len(summary.lost) == 4
    assert {answer.attempts for answer in summary.answers} == {2}
    assert summary.by_status() == {"400": 4}
    assert summary.by_problem() == {"webhook-signature-invalid": 4}
    assert StripeEvent.objects.count() == 0


def test_command_exits_non_zero_when_the_server_is_unreachable(db, capsys):
    with pytest.raises(CommandError, match="4 deliveries were lost"):
        call_command(
            "stripe_simulate", "checkout", "--base-url", f"http://127.0.0.1:{free_port()}",
            "--retries", "0", verbosity=0,
        )  # fmt: skip
    out = capsys.readouterr().out
    assert re.search(r"^HTTP no answer\s+4$", out, re.MULTILINE)
    assert re.search(r"^  ConnectionRefusedError\s+4$", out, re.MULTILINE)
    assert re.search(r"^lost\s+4$", out, re.MULTILINE)


def test_wait_gives_up_when_the_server_never_answers(db):
    with pytest.raises(CommandError, match=r"No answer from http://127\.0\.0\.1:\d+/healthz"):
        call_command(
            "stripe_simulate", "checkout", "--base-url", f"http://127.0.0.1:{free_port()}",
            "--wait", "0.5", verbosity=0,
        )  # fmt: skip
    assert StripeEvent.objects.count() == 0


def test_url_and_secret_go_together(db):
    with pytest.raises(CommandError, match="--url and --secret go together"):
        call_command("stripe_simulate", "checkout", "--url", "http://127.0.0.1:9/x/")
    with pytest.raises(CommandError, match="http"):
        call_command(
            "stripe_simulate", "checkout", "--url", "file:///etc/passwd", "--secret", "whsec_x"
        )


def test_local_endpoint_is_created_once_and_its_secret_remembered(db):
    first, secret = local.simulator_endpoint()
    again, secret_again = local.simulator_endpoint()

    assert again.pk == first.pk and secret_again == secret
    assert secret.startswith("whsec_")
    assert WebhookEndpoint.objects.filter(url=local.SIMULATOR_ENDPOINT_URL).count() == 1
    assert WebhookSecret.objects.filter(endpoint=first).count() == 1


class FlakyWebhook(http.server.BaseHTTPRequestHandler):
    """A stand-in receiver on loopback: 503 for the first `failures` attempts, then 200."""

    failures = 0
    attempts: list[tuple[str, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).attempts.append((self.headers["Stripe-Signature"], body))
        failed = len(type(self).attempts) <= type(self).failures
        self.send_response(503 if failed else 200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "accepted"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_receiver():
    FlakyWebhook.attempts = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyWebhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook/x/"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("failures", "delivered"), [(3, True), (4, False)])
def test_sender_retries_non_2xx_with_doubling_backoff_and_fresh_signatures(
    flaky_receiver, failures, delivered
):
    FlakyWebhook.failures = failures
    [event] = scenarios.build(
        "refund", user_ids=[1], rng=random.Random(1), now=1_900_000_000
    ).events[-1:]
    sleeps = []
    sender = Sender(url=flaky_receiver, secret="whsec_flaky", retries=3, sleep=sleeps.append)

    answer = sender.send(event)

    assert answer.ok is delivered
    assert answer.status == (200 if delivered else 503)
    assert answer.attempts == 4
    assert sleeps == [0.25, 0.5, 1.0]
    assert len(FlakyWebhook.attempts) == 4
    for header, body in FlakyWebhook.attempts:
        assert json.loads(body)["id"] == event["id"]
        # Each attempt carries a valid, current signature (raises otherwise).
        verify_signature(
            header=header, body=body, secrets=["whsec_flaky"], tolerance=300, now=time.time()
        )


@pytest.mark.parametrize("name", scenarios.SCENARIO_NAMES)
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), now=st.integers(1_700_000_000, 2**31))
def test_scenario_events_are_realistic_stripe_sequences(name, seed, now):
    scenario = scenarios.build(name, user_ids=[41, 42], rng=random.Random(seed), now=now)

    by_customer: dict[str, list[dict]] = {}
    for event in scenario.events:
        obj = event["data"]["object"]
        customer = obj.get("customer") or obj.get("charge", {}).get("customer")
        by_customer.setdefault(customer, []).append(event)
        assert event["object"] == "event" and event["id"].startswith("evt_")
        assert event["api_version"] == "2026-05-27.dahlia"
        if event["type"].startswith("customer.subscription."):
            [item] = obj["items"]["data"]
            assert item["price"]["lookup_key"] in PLAN_AMOUNTS
            assert item["current_period_start"] < item["current_period_end"]
        if event["type"].startswith("invoice."):
            assert obj["parent"]["subscription_details"]["subscription"].startswith("sub_")
            [line] = obj["lines"]["data"]
            assert line["period"]["start"] < line["period"]["end"]
        if event["type"] == "charge.refunded":
            assert obj["amount_refunded"] == obj["amount"] > 0
        if event["type"] == "checkout.session.completed":
            assert obj["client_reference_id"] in {"41", "42"}
    assert len(by_customer) == 2
    for events in by_customer.values():
        created = [event["created"] for event in events]
        assert created == sorted(created)  # never decreasing per customer
        # Stripe's habit: every story starts with several events in one second.
        assert created[0] == created[1]
        assert events[0]["type"] == "checkout.session.completed"
        assert max(created) <= now
    assert len({event["id"] for event in scenario.events}) == len(scenario.events)


def test_out_of_order_burst_delivers_newest_first():
    scenario = scenarios.build(
        "out-of-order", user_ids=[1], rng=random.Random(5), now=int(time.time())
    )

    delivered = [event["created"] for event in scenario.deliveries]
    assert delivered == sorted(delivered, reverse=True)
    assert sorted(e["id"] for e in scenario.deliveries) == sorted(e["id"] for e in scenario.events)
