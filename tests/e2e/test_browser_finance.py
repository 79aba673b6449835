"""Finance in a real browser: sign in with a second factor, filter the trail, open an event,
export the filtered rows as CSV and check the export's SHA-256 manifest."""

import csv
import hashlib
import io
import re
from base64 import b32decode

from django.conf import settings
from django_otp.oath import totp
from playwright.sync_api import expect

from audit import actions
from audit.models import ActorRole, AuditEvent, Outcome
from audit.services import Target, audit_event_record
from tests.audit_trail import audit_seal

FAILED_EVENTS = ("evt_browser_failed_1", "evt_browser_failed_2")
PAID_EVENTS = ("evt_browser_paid_1", "evt_browser_paid_2", "evt_browser_paid_3")


def seed_trail() -> None:
    """Payment rows as the billing receivers would record them, through the audit service."""
    for event_id in PAID_EVENTS:
        audit_event_record(
            action=actions.INVOICE_PAID.name,
            target=Target("invoice", f"in_{event_id}", "invoice"),
            stripe_event_id=event_id,
        )
    for event_id in FAILED_EVENTS:
        audit_event_record(
            action=actions.PAYMENT_FAILED.name,
            outcome=Outcome.FAILURE,
            target=Target("invoice", f"in_{event_id}", "invoice"),
            stripe_event_id=event_id,
            reason="card_declined",
        )
    audit_seal()  # what the audit_seal process does in production


def split_manifest(content: bytes) -> tuple[bytes, str]:
    """(everything before the last line, the last line)."""
    assert content.endswith(b"\n")
    body, _, last = content[:-1].rpartition(b"\n")
    return body + b"\n", last.decode()


def test_finance_signs_in_filters_opens_and_exports(page, shot, sign_in, staff_member, artifacts):
    seed_trail()
    finance, device = staff_member("fiona", settings.AUDIT_FINANCE_GROUP)
    sign_in(finance, device)

    page.get_by_role("link", name="Audit events").click()
    page.wait_for_url(re.compile(r"/admin/audit/auditevent/$"))
    rows = page.locator("#result_list tbody tr")
    expect(rows.locator("td.field-action", has_text=actions.INVOICE_PAID.name)).to_have_count(3)
    shot("trail")

    filters = page.locator("#changelist-filter")
    filters.get_by_role("link", name=actions.PAYMENT_FAILED.label, exact=True).click()
    page.wait_for_url(re.compile(r"action=billing\.payment\.failed"))
    expect(rows).to_have_count(len(FAILED_EVENTS))
    expect(rows.locator("td.field-action")).to_have_text([actions.PAYMENT_FAILED.name] * 2)
    expect(rows.locator("td.field-stripe_event_id")).to_have_text(list(reversed(FAILED_EVENTS)))
    shot("trail-filtered")

    rows.first.locator("th.field-sequence a").click()
    page.wait_for_url(re.compile(r"/admin/audit/auditevent/\d+/change/"))
    expect(page.locator(".field-stripe_event_id .readonly")).to_have_text(FAILED_EVENTS[1])
    expect(page.locator(".field-reason .readonly")).to_have_text("card_declined")
    expect(page.locator(".field-chain_link .readonly")).to_contain_text(
        "verifies: hash matches this row and the previous row's hash"
    )
    shot("event-detail")

    page.go_back()
    page.wait_for_url(re.compile(r"action=billing\.payment\.failed"))
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export these rows as CSV").click()
    download = download_info.value
    assert re.fullmatch(r"audit-to-\d+\.csv", download.suggested_filename)
    download.save_as(artifacts / "finance-export.csv")
    content = (artifacts / "finance-export.csv").read_bytes()

    body, manifest = split_manifest(content)
    exported = list(csv.DictReader(io.StringIO(body.decode())))
    assert [row["stripe_event_id"] for row in exported] == list(FAILED_EVENTS)
    assert {row["action"] for row in exported} == {actions.PAYMENT_FAILED.name}
    assert manifest == (f"#manifest,rows={len(exported)},sha256={hashlib.sha256(body).hexdigest()}")
    exports = AuditEvent.objects.filter(action=actions.EXPORT_CREATED.name)
    assert list(exports.values_list("actor_name", "actor_role")) == [("fiona", ActorRole.FINANCE)]


def test_first_sign_in_enrols_an_authenticator(page, shot, submit_password, staff_member):
    finance, _ = staff_member("flora", settings.AUDIT_FINANCE_GROUP, enrolled=False)
    submit_password(finance)
    page.wait_for_url(re.compile(r"/admin/2fa/enroll/"))
    expect(page.locator(".qr svg")).to_be_visible()
    # The key on the page is what the phone would store: codes derived from it must work.
    code = totp(b32decode(page.locator("#totp-secret").inner_text()))
    shot("enrol")
    page.fill("#id_token", f"{code:06d}")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#backup-codes li")).to_have_count(10)
    shot("enrol-backup-codes")
    page.get_by_role("link", name="Continue to the admin").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    expect(page.get_by_role("link", name="Audit events")).to_be_visible()
    shot("enrolled-signed-in")


def test_finance_cannot_grant_or_change_the_trail(page, shot, sign_in, staff_member):
    seed_trail()
    finance, device = staff_member("frank", settings.AUDIT_FINANCE_GROUP)
    sign_in(finance, device)

    page.goto("/admin/entitlements/entitlement/")
    expect(page.locator("#content h1")).to_be_visible()
    expect(page.get_by_role("link", name="Grant by hand")).to_have_count(0)
    page.goto("/admin/audit/auditevent/")
    expect(page.locator("#result_list")).to_be_visible()
    # No bulk action but the export, and no "Add" button: the console is read-only.
    expect(page.locator("select[name=action] option[value]:not([value=''])")).to_have_text(
        ["Export selected rows as CSV"]
    )
    expect(page.locator(".object-tools .addlink")).to_have_count(0)
    shot("read-only-trail")
