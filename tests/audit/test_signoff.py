"""Human sign-off of the daily review in the admin: findings worked, day signed, no self-review."""

from datetime import UTC, date, datetime

from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from prometheus_client import REGISTRY

from audit.models import AuditCheckpoint, AuditEvent, FindingKind, FindingStatus
from audit.services import audit_event_record
from audit.signoff import business_days_between, review_overdue_gauge_refresh
from tests.audit_trail import sealed_checkpoint, sealed_review
from tests.staff_login import staff_login


def findings_of(review) -> dict[str, object]:
    return {finding.kind: finding for finding in review.findings.all()}


def work(client, review, finding, decision, note="checked with the team"):
    url = reverse("admin:audit_dailyreview_work", args=[review.pk])
    return client.post(url, {"finding": finding.pk, "decision": decision, "note": note})


def sign_off(client, review):
    return client.post(reverse("admin:audit_dailyreview_sign_off", args=[review.pk]))


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_finance_works_each_finding_and_signs_the_day_off(finance_client, day_with_findings):
    review = day_with_findings
    found = findings_of(review)
    assert set(found) == {FindingKind.ROLE_CHANGES, FindingKind.SIGN_IN_FAILURES}
    page = finance_client.get(reverse("admin:audit_dailyreview_change", args=[review.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Failed sign-ins over the threshold" in body and 'id="sign-off"' in body

    # Not before every finding is worked.
    refused = sign_off(finance_client, review)
    assert "still open" in " ".join(messages_of(finance_client.get(refused.url)))

    # A note is the evidence: none, no decision. "open" is a state, not a decision.
    work(finance_client, review, found[FindingKind.ROLE_CHANGES], "accepted", note=" ")
    reopened = work(finance_client, review, found[FindingKind.ROLE_CHANGES], "open")
    assert "either accepted or escalated" in " ".join(messages_of(finance_client.get(reopened.url)))
    assert review.findings.filter(status=FindingStatus.OPEN).count() == 2

    work(finance_client, review, found[FindingKind.ROLE_CHANGES], "accepted")
    work(finance_client, review, found[FindingKind.SIGN_IN_FAILURES], "escalated", "to security")
    worked = findings_of(review)
    assert worked[FindingKind.ROLE_CHANGES].status == FindingStatus.ACCEPTED
    assert worked[FindingKind.SIGN_IN_FAILURES].note == "to security"
    escalated_sequence = worked[FindingKind.SIGN_IN_FAILURES].worked_row_id
    escalated = AuditEvent.objects.get(pk=escalated_sequence)
    assert (escalated.action, escalated.actor_name, escalated.reason) == (
        "audit.review.finding_escalated",
        "fiona",
        "to security",
    )
    assert (escalated.target_type, escalated.target_id) == (
        "review_finding",
        str(worked[FindingKind.SIGN_IN_FAILURES].pk),
    )

    response = sign_off(finance_client, review)
    assert response.status_code == 302
    review.refresh_from_db()
    # The sign-off names the newest checkpoint, which covers the day's last row.
    checkpoint = AuditCheckpoint.objects.latest("id")
    row = AuditEvent.objects.get(pk=review.sign_off_row_id)
    assert row.action == "audit.review.signed_off"
    assert (row.target_type, row.target_id) == ("daily_review", str(review.pk))
    assert row.actor_name == review.signed_off_by_name == "fiona"
    assert review.checkpoint_id == row.meta["checkpoint_id"] == checkpoint.pk
    assert row.meta["checkpoint_sequence"] == checkpoint.sequence >= review.last_sequence
    assert row.meta["checkpoint_hash"] == review.checkpoint_hash
    assert row.meta["day"] == review.day.isoformat()
    # Signed: nothing more to work, nothing to sign twice.
    again = sign_off(finance_client, review)
    assert "already signed off" in " ".join(messages_of(finance_client.get(again.url)))
    page = finance_client.get(reverse("admin:audit_dailyreview_change", args=[review.pk]))
    assert 'id="signed-off"' in page.content.decode()


def test_nobody_signs_off_a_day_with_their_own_actions(
    finance_client, day_with_findings, django_user_model
):
    review = day_with_findings
    sam = django_user_model.objects.get(username="sam")
    sam.groups.add(Group.objects.get(name="Finance"))
    for finding in review.findings.all():
        work(finance_client, review, finding, "accepted")

    client = staff_login(Client(), sam)  # a second browser: finance_client stays fiona's
    response = sign_off(client, review)
    text = " ".join(messages_of(client.get(response.url)))
    assert "You cannot sign off the review of" in text
    assert "your own actions (Failed sign-ins over the threshold)" in text
    review.refresh_from_db()
    assert review.signed_off_at is None
    assert not AuditEvent.objects.filter(action="audit.review.signed_off").exists()

    sign_off(finance_client, review)  # fiona's actions are not among the findings
    review.refresh_from_db()
    assert review.signed_off_by_name == "fiona"


def test_no_sign_off_without_a_checkpoint_covering_the_day(finance_client, postgres):
    audit_event_record(action="audit.chain.verified")
    review = sealed_review(day=datetime.now(UTC).date())
    # Only the checkpoint finding: work it, then the sign-off still needs a checkpoint.
    for finding in review.findings.all():
        work(finance_client, review, finding, "escalated", "asked ops to sign")
    response = sign_off(finance_client, review)
    assert "No signed checkpoint covers the day" in " ".join(
        messages_of(finance_client.get(response.url))
    )
    sealed_checkpoint()
    sign_off(finance_client, review)
    review.refresh_from_db()
    assert review.signed_off_at is not None


def test_support_cannot_work_or_sign_and_get_is_refused(
    day_with_findings, finance_client, django_user_model
):
    review = day_with_findings
    sign_off_url = reverse("admin:audit_dailyreview_sign_off", args=[review.pk])
    assert finance_client.get(sign_off_url).status_code == 405
    support = django_user_model.objects.create_user("suzy", is_staff=True)
    support.groups.add(Group.objects.get(name="Support"))
    client = staff_login(Client(), support)
    finding = review.findings.first()
    assert work(client, review, finding, "accepted").status_code == 403
    assert sign_off(client, review).status_code == 403
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN


def test_business_days_skip_weekends():
    friday = date(2026, 11, 27)
    assert business_days_between(friday, date(2026, 11, 30)) == 1  # Monday
    assert business_days_between(friday, date(2026, 12, 1)) == 2
    assert business_days_between(date(2026, 11, 30), date(2026, 11, 30)) == 0


def test_unsigned_days_past_the_deadline_are_counted_and_shown(
    finance_client, finance, postgres, settings
):
    settings.AUDIT_REVIEW_SIGNOFF_BUSINESS_DAYS = 1
    long_ago = sealed_review(day=date(2020, 1, 6))
    signed = sealed_review(day=date(2020, 1, 7))
    sealed_checkpoint()
    for finding in signed.findings.all():
        work(finance_client, signed, finding, "accepted")
    sign_off(finance_client, signed)
    signed.refresh_from_db()
    assert signed.signed_off_at is not None
    assert review_overdue_gauge_refresh() == 1
    assert REGISTRY.get_sample_value("tollgate_audit_reviews_overdue") == 1.0

    body = finance_client.get(reverse("admin:audit_dashboard")).content.decode()
    assert "1 day not signed off in time" in body
    assert long_ago.day.isoformat() in body

    settings.AUDIT_REVIEW_SIGNOFF_BUSINESS_DAYS = 100_000
    assert review_overdue_gauge_refresh() == 0
    assert REGISTRY.get_sample_value("tollgate_audit_reviews_overdue") == 0.0
