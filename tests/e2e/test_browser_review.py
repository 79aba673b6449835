"""A Finance reviewer's day in a real browser: the dashboard's charts, then the daily review's
findings worked (one accepted, one escalated) and the day signed off."""

import re
from datetime import UTC, datetime

from playwright.sync_api import expect

from audit import actions
from audit.models import AuditEvent, FindingKind, Outcome
from audit.review import daily_review_create
from audit.services import Target, audit_checkpoint_create, audit_event_record
from config.context import Actor
from tests.audit_trail import audit_seal


def seed_day(staff_member):
    """Sam (Support) failed to sign in twice and joined a group; a payment failed and a webhook
    was refused. A checkpoint covers it all; the day is reviewed."""
    sam, _ = staff_member("sam", "Support")
    for _ in range(2):
        audit_event_record(
            action=actions.LOGIN_FAILED.name,
            actor=Actor(kind="user", user_id=sam.pk),
            outcome=Outcome.FAILURE,
            target=Target("user", str(sam.pk), "user sam"),
        )
    audit_event_record(
        action=actions.PAYMENT_FAILED.name,
        outcome=Outcome.FAILURE,
        target=Target("invoice", "in_review_1", "invoice"),
    )
    audit_event_record(
        action=actions.WEBHOOK_REJECTED.name,
        actor=Actor(kind="stripe"),
        outcome=Outcome.FAILURE,
        meta={"problem": "webhook-signature-invalid", "http_status": 400},
    )
    audit_seal()  # as the sealer does before beat's checkpoint and review
    audit_checkpoint_create()
    return daily_review_create(day=datetime.now(UTC).date())


def test_finance_reviewer_works_the_findings_and_signs_the_day_off(
    page, shot, sign_in, staff_member, settings
):
    settings.AUDIT_REVIEW_FAILED_SIGNIN_THRESHOLD = 2
    fiona, device = staff_member("fiona", settings.AUDIT_FINANCE_GROUP)
    review = seed_day(staff_member)
    findings = {finding.kind: finding for finding in review.findings.all()}
    assert set(findings) == {FindingKind.ROLE_CHANGES, FindingKind.SIGN_IN_FAILURES}
    sign_in(fiona, device)

    page.goto("/admin/audit/auditevent/dashboard/")
    expect(page.locator("figure.audit-chart")).to_have_count(4)
    expect(page.locator("#chart-failed-payments svg polyline")).to_have_count(1)
    expect(page.locator("#reviews-overdue")).to_contain_text("signed off in time")
    shot("dashboard-charts")
    page.get_by_role("link", name="90 days").click()
    expect(page.locator("#chart-rejected svg")).to_have_attribute(
        "aria-label", "Rejected webhooks, last 90 days"
    )

    page.get_by_role("link", name="All daily reviews").click()
    page.locator(f'#result_list a[href$="/dailyreview/{review.pk}/change/"]').click()
    page.wait_for_url(re.compile(rf"/admin/audit/dailyreview/{review.pk}/change/$"))
    expect(page.locator("tr.finding")).to_have_count(2)
    shot("review-open")

    accepted = page.locator(f"#finding-{findings[FindingKind.ROLE_CHANGES].pk}")
    accepted.get_by_placeholder(re.compile("note")).fill("new Support hire, ticket HR-12")
    accepted.get_by_role("button", name="Accept").click()
    expect(page.locator(".messagelist")).to_contain_text("recorded")
    escalated = page.locator(f"#finding-{findings[FindingKind.SIGN_IN_FAILURES].pk}")
    escalated.get_by_placeholder(re.compile("note")).fill("to security: sam's account")
    escalated.get_by_role("button", name="Escalate").click()
    expect(escalated.locator(".finding-status")).to_contain_text("Escalated by fiona")
    shot("findings-worked")

    page.locator("#sign-off").click()
    expect(page.locator("#signed-off")).to_contain_text("Signed off by fiona")
    shot("signed-off")
    signed = AuditEvent.objects.get(action=actions.REVIEW_SIGNED_OFF.name)
    assert signed.actor_name == "fiona"
    assert signed.meta["day"] == review.day.isoformat()
