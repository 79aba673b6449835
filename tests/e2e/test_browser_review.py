"""A Finance reviewer in a real browser: the dashboard's charts, the daily review's findings
worked (one accepted, one escalated), the day signed off and its evidence downloaded; then the
staff access review (one account kept, one removed, completed) and its evidence; and a
reviewer refused the sign-off of a day whose findings include their own actions."""

import io
import json
import re
import zipfile
from datetime import UTC, datetime

from playwright.sync_api import expect

from audit import actions
from audit.access_review import access_review_decide
from audit.models import AccessReview, AuditEvent, FindingKind, Outcome
from audit.review import daily_review_create
from audit.services import Target, audit_checkpoint_create, audit_event_record
from config.context import Actor, acting_as
from tests.audit_trail import audit_seal


def answer(row, field: str, text: str, button: str) -> None:
    """Type the note or reason into a row's form and press one of its buttons."""
    row.get_by_placeholder(re.compile(field)).fill(text)
    row.get_by_role("button", name=button).click()


def downloaded_manifest(page, link, artifacts, name) -> dict:
    """Click the evidence link, keep the ZIP in the artifacts, return its manifest."""
    with page.expect_download() as download_info:
        page.locator(link).click()
    download = download_info.value
    assert download.suggested_filename.endswith(".zip")
    download.save_as(artifacts / name)
    with zipfile.ZipFile(io.BytesIO((artifacts / name).read_bytes())) as archive:
        manifest = next(n for n in archive.namelist() if n.endswith("/manifest.json"))
        return json.loads(archive.read(manifest))


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
    page, shot, sign_in, staff_member, settings, artifacts
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
    answer(accepted, "note", "new Support hire, ticket HR-12", "Accept")
    expect(page.locator(".messagelist")).to_contain_text("recorded")
    escalated = page.locator(f"#finding-{findings[FindingKind.SIGN_IN_FAILURES].pk}")
    answer(escalated, "note", "to security: sam's account", "Escalate")
    expect(escalated.locator(".finding-status")).to_contain_text("Escalated by fiona")
    shot("findings-worked")

    page.locator("#sign-off").click()
    expect(page.locator("#signed-off")).to_contain_text("Signed off by fiona")
    shot("signed-off")
    signed = AuditEvent.objects.get(action=actions.REVIEW_SIGNED_OFF.name)
    assert signed.actor_name == "fiona"
    assert signed.meta["day"] == review.day.isoformat()

    manifest = downloaded_manifest(page, "#review-evidence", artifacts, "daily-review.zip")
    assert manifest["parameters"]["day"] == review.day.isoformat()
    assert manifest["signed_off"]["by_name"] == "fiona"
    assert manifest["findings"] == {"total": 2, "accepted": 1, "escalated": 1}
    assert manifest["checkpoint"]["tree_size"] >= review.last_sequence


def test_a_reviewer_cannot_sign_off_a_day_with_their_own_actions(
    page, shot, sign_in, staff_member, settings
):
    # Frank (Finance) failed to sign in twice: that finding is his own, so the day must be
    # signed off by someone else, whatever he answers to the findings.
    settings.AUDIT_REVIEW_FAILED_SIGNIN_THRESHOLD = 2
    frank, device = staff_member("frank", settings.AUDIT_FINANCE_GROUP)
    for _ in range(2):
        audit_event_record(
            action=actions.LOGIN_FAILED.name,
            actor=Actor(kind="user", user_id=frank.pk),
            outcome=Outcome.FAILURE,
            target=Target("user", str(frank.pk), "user frank"),
        )
    audit_seal()
    audit_checkpoint_create()
    review = daily_review_create(day=datetime.now(UTC).date())
    findings = list(review.findings.all())
    assert FindingKind.SIGN_IN_FAILURES in {finding.kind for finding in findings}
    sign_in(frank, device)

    page.goto(f"/admin/audit/dailyreview/{review.pk}/change/")
    for finding in findings:
        answer(page.locator(f"#finding-{finding.pk}"), "note", "looked at it", "Accept")
        expect(page.locator(".messagelist")).to_contain_text("recorded")
    page.locator("#sign-off").click()
    expect(page.locator(".messagelist")).to_contain_text("your own actions")
    shot("self-sign-off-refused")
    review.refresh_from_db()
    assert review.signed_off_at is None
    assert not AuditEvent.objects.filter(action=actions.REVIEW_SIGNED_OFF.name).exists()


def test_finance_reviewer_runs_the_staff_access_review(
    page, shot, sign_in, staff_member, settings, artifacts
):
    fiona, device = staff_member("fiona", settings.AUDIT_FINANCE_GROUP)
    fred, _ = staff_member("fred", settings.AUDIT_FINANCE_GROUP)
    sam, _ = staff_member("sam", "Support")
    staff_member("bob", "Billing admin", enrolled=False)
    sign_in(fiona, device)

    page.goto("/admin/audit/auditevent/dashboard/")
    expect(page.locator("#access-review-status")).to_contain_text("no access review")
    page.locator("#access-review-status").get_by_role("link", name="All access reviews").click()
    page.locator("#start-access-review").click()
    page.wait_for_url(re.compile(r"/admin/audit/accessreview/\d+/change/$"))
    review = AccessReview.objects.get()
    rows = {d.username: d for d in review.decisions.all()}
    expect(page.locator("tr.account")).to_have_count(4)
    expect(page.locator(f"#account-{rows['bob'].pk} .second-factor")).to_have_text("none")
    expect(page.locator(f"#account-{rows['fiona'].pk}")).to_contain_text("Your own account")
    shot("access-review-open")

    answer(page.locator(f"#account-{rows['bob'].pk}"), "reason", "runs the plan catalogue", "Keep")
    expect(page.locator(".messagelist")).to_contain_text("Recorded the decision on bob")
    removed = page.locator(f"#account-{rows['sam'].pk}")
    answer(removed, "reason", "left the company, ticket HR-31", "Remove")
    expect(removed.locator(".decision-status")).to_contain_text("Remove by fiona")
    answer(page.locator(f"#account-{rows['fred'].pk}"), "reason", "Finance reviewer", "Keep")
    sam.refresh_from_db()
    assert not sam.is_active

    # fiona's own account waits for another reviewer: no completion until fred decides it.
    page.locator("#complete-access-review").click()
    expect(page.locator(".messagelist")).to_contain_text("1 accounts are still undecided")
    with acting_as(Actor(kind="user", user_id=fred.pk)):
        access_review_decide(
            decision=rows["fiona"], user=fred, outcome="keep", reason="Finance reviewer"
        )
    audit_seal()
    audit_checkpoint_create()
    page.reload()
    shot("access-review-decided")
    page.locator("#complete-access-review").click()
    expect(page.locator("#access-review-completed")).to_contain_text("Completed by fiona")
    shot("access-review-completed")

    manifest = downloaded_manifest(page, "#access-review-evidence", artifacts, "access.zip")
    assert manifest["decisions"] == {"keep": 3, "remove": 1}
    assert manifest["completed"]["by_name"] == "fiona"
    removal = AuditEvent.objects.get(action="audit.access_review.removed")
    assert (removal.actor_name, removal.reason) == ("fiona", "left the company, ticket HR-31")
    page.goto("/admin/audit/auditevent/dashboard/")
    expect(page.locator("#access-review-status")).to_contain_text("Staff access review due")
