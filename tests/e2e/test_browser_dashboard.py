"""The compliance dashboard in a real browser: today's figures, the chain head, the latest
verification (intact, and broken after a row is altered behind the application's back)."""

import re

from django.conf import settings
from django.db import connection, transaction
from playwright.sync_api import expect

from audit import actions
from audit.models import AuditEvent, Outcome
from audit.selectors import dead_letters_waiting
from audit.services import Target, audit_event_record, chain_verification_run
from config.context import Actor
from entitlements.models import Feature
from entitlements.services import entitlement_grant_manual
from tests.audit_trail import audit_seal

READ_FIGURES = """rows => Object.fromEntries(rows.map(row => [
    row.querySelector('th').textContent.trim(), row.querySelector('td').textContent.trim()]))"""


def seed_today(django_user_model) -> None:
    """Two failed payments, one paid invoice, and a support grant through entitlements."""
    for number, action in enumerate(
        (actions.PAYMENT_FAILED, actions.PAYMENT_FAILED, actions.INVOICE_PAID), start=1
    ):
        audit_event_record(
            action=action.name,
            outcome=Outcome.FAILURE if action is actions.PAYMENT_FAILED else Outcome.SUCCESS,
            target=Target("invoice", f"in_dash_{number}", "invoice"),
            stripe_event_id=f"evt_dash_{number}",
        )
    customer = django_user_model.objects.create_user(username="dora", password="unused-pw-2")
    entitlement_grant_manual(
        user=customer,
        granted_by=None,
        actor=Actor(kind="system"),
        reason="trial extension",
        feature_key=Feature.objects.order_by("lookup_key").first().lookup_key,
    )
    audit_seal()  # what the audit_seal process does in production


def tamper(sequence: int) -> None:
    """What the chain exists to catch: a row changed in the database, triggers bypassed."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        cursor.execute(
            f"UPDATE {table} SET reason = %s WHERE sequence = %s",  # noqa: S608 - own table
            ["edited afterwards", sequence],
        )
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")


def open_dashboard(page, sign_in, staff_member, username):
    finance, device = staff_member(username, settings.AUDIT_FINANCE_GROUP)
    sign_in(finance, device)
    page.goto("/admin/audit/auditevent/")
    page.get_by_role("link", name="Compliance dashboard").click()
    page.wait_for_url(re.compile(r"/admin/audit/auditevent/dashboard/$"))
    expect(page.get_by_role("heading", name="Compliance dashboard")).to_be_visible()
    return page.locator("#content-main table")


def test_dashboard_shows_todays_figures_and_an_intact_chain(
    page, shot, sign_in, staff_member, django_user_model
):
    seed_today(django_user_model)
    verified_rows = AuditEvent.objects.filter(sequence__isnull=False).count()
    chain_verification_run()

    tables = open_dashboard(page, sign_in, staff_member, "felix")
    expect(page.get_by_role("heading", name="Today (UTC)")).to_be_visible()
    expect(page.get_by_role("heading", name="Chain", exact=True)).to_be_visible()
    shot("dashboard")

    figures = tables.nth(0).locator("tr").evaluate_all(READ_FIGURES)
    waiting = dead_letters_waiting()
    assert figures == {
        "Payment events today": "3",
        "Failed payments today": "2",
        "Rejected webhooks today": "0",
        "Dead letters reprocessed today": "0",
        "Grants today": "1",
        "Revokes and lapses today": "0",
        "Dead letters waiting": "n/a" if waiting is None else str(waiting),
    }
    chain = tables.nth(1).locator("tr").evaluate_all(READ_FIGURES)
    # Nothing sealed since the verification (no sealer runs in tests): the head it showed is the
    # newest sealed row, and the rows written since (sign-in, views) wait for the sealer.
    shown_head = AuditEvent.objects.filter(sequence__isnull=False).order_by("sequence").last()
    assert chain["Head"] == f"#{shown_head.sequence} {shown_head.hash}"
    waiting = AuditEvent.objects.filter(sequence__isnull=True).count() - 1  # its own view row
    assert re.fullmatch(rf"{waiting} rows, the oldest \S+ s old", chain["Waiting to be sealed"])
    assert chain["Latest checkpoint"].startswith("none yet")
    assert re.fullmatch(rf"intact \({verified_rows} rows, \S+\)", chain["Last verification"])


def test_dashboard_and_event_page_show_a_broken_chain(page, shot, sign_in, staff_member):
    for number in range(1, 4):
        audit_event_record(
            action=actions.INVOICE_PAID.name,
            target=Target("invoice", f"in_broken_{number}", "invoice"),
            stripe_event_id=f"evt_broken_{number}",
        )
    audit_seal()
    altered = AuditEvent.objects.get(stripe_event_id="evt_broken_2").sequence
    tamper(altered)
    chain_verification_run()

    open_dashboard(page, sign_in, staff_member, "fern")
    expect(page.locator("#last-verification")).to_contain_text(f"BROKEN at sequence {altered}")
    shot("dashboard-broken")

    by_sequence = dict(AuditEvent.objects.values_list("sequence", "pk"))  # URLs name the pk
    page.goto(f"/admin/audit/auditevent/{by_sequence[altered]}/change/")
    expect(page.locator(".field-chain_link .readonly")).to_have_text(
        "DOES NOT VERIFY: run audit_verify"
    )
    shot("event-does-not-verify")
    page.goto(f"/admin/audit/auditevent/{by_sequence[altered + 1]}/change/")
    expect(page.locator(".field-chain_link .readonly")).to_contain_text("verifies: hash matches")
