"""The staff access review in the admin: every staff account listed as it stands, each kept or
removed with a reason by someone else, removal effective at once, all of it in the trail."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.access_review import access_review_gauge_refresh
from audit.models import AccessDecision, AccessReview, AuditEvent
from staff.api_tokens import api_token_create
from staff.models import StaffApiToken
from tests.audit.test_review_evidence import checked_manifest, unpack
from tests.audit_trail import sealed_checkpoint
from tests.staff_login import staff_login


@pytest.fixture
def staff(postgres, finance, django_user_model):
    """fiona (Finance), fred (Finance), sam (Support, authenticator, API token, signed in) and
    bob (Billing admin, no second factor); carol is a customer, not staff."""

    def member(name, group, **extra):
        user = django_user_model.objects.create_user(name, is_staff=True, **extra)
        user.groups.add(Group.objects.get(name=group))
        return user

    fred = member("fred", "Finance")
    sam = member("sam", "Support", last_login=timezone.now() - timedelta(days=3))
    bob = member("bob", "Billing admin")
    django_user_model.objects.create_user("carol")
    sam_client = staff_login(Client(), sam)
    api_token_create(user=sam, name="script", lifetime=timedelta(days=5), now=timezone.now())
    return {"fiona": finance, "fred": fred, "sam": sam, "bob": bob, "sam_client": sam_client}


def start(client):
    return client.post(reverse("admin:audit_accessreview_start"))


def decide(client, decision, outcome, reason="still in the team"):
    url = reverse("admin:audit_accessreview_decide", args=[decision.review_id])
    return client.post(url, {"decision": decision.pk, "outcome": outcome, "reason": reason})


def complete(client, review):
    return client.post(reverse("admin:audit_accessreview_complete", args=[review.pk]))


def messages_after(client, response) -> str:
    return " ".join(str(m) for m in client.get(response.url).context["messages"])


def test_finance_keeps_and_removes_accounts_and_completes_the_review(
    finance_client, staff, tmp_path
):
    response = start(finance_client)
    review = AccessReview.objects.get()
    assert response.url == reverse("admin:audit_accessreview_change", args=[review.pk])
    listed = {decision.username: decision for decision in review.decisions.all()}
    assert set(listed) == {"fiona", "fred", "sam", "bob"}  # staff only, not carol
    sam, bob, fiona = listed["sam"], listed["bob"], listed["fiona"]
    assert (sam.role, sam.groups, sam.second_factor) == (
        "SUPPORT",
        ["Support"],
        "authenticator app",
    )
    assert "entitlements.grant_entitlement" in sam.permissions
    assert sam.last_login == staff["sam"].last_login
    assert (bob.role, bob.second_factor, bob.last_login) == ("ADMIN", "none", None)
    assert "billing.reprocess_deadletter" in bob.permissions
    assert "audit.conduct_accessreview" in listed["fred"].permissions
    started = AuditEvent.objects.get(action="audit.access_review.started")
    assert (started.actor_name, started.meta["accounts"]) == ("fiona", 4)

    page = finance_client.get(response.url).content.decode()
    assert f'id="account-{fiona.pk}"' in page and "Your own account" in page

    # A reason is the evidence; one's own account is someone else's decision.
    refused = decide(finance_client, bob, "keep", reason="  ")
    assert "Give a reason" in messages_after(finance_client, refused)
    own = decide(finance_client, fiona, "keep")
    assert "cannot decide on your own account" in messages_after(finance_client, own)
    fiona.refresh_from_db()
    assert fiona.decision == AccessDecision.PENDING

    decide(finance_client, bob, "keep", "runs the plan catalogue")
    decide(finance_client, sam, "remove", "left the company")
    decide(finance_client, listed["fred"], "keep", "Finance reviewer")
    sam_user = staff["sam"]
    sam_user.refresh_from_db()
    assert not sam_user.is_active
    assert not StaffApiToken.objects.filter(user=sam_user, revoked_at__isnull=True).exists()
    assert not any(
        str(s.get_decoded().get("_auth_user_id")) == str(sam_user.pk) for s in Session.objects.all()
    )
    assert staff["sam_client"].get("/admin/").status_code == 302  # signed out
    removed = AuditEvent.objects.get(action="audit.access_review.removed")
    assert (removed.actor_name, removed.reason, removed.target_id) == (
        "fiona",
        "left the company",
        str(sam_user.pk),
    )
    # The removal's effects follow the decision in the trail.
    later = AuditEvent.objects.filter(pk__gt=removed.pk).values_list("action", flat=True)
    assert {"auth.role.changed", "auth.api_token.revoked"} <= set(later)

    # Not complete while fiona's own account waits for another reviewer.
    refused = complete(finance_client, review)
    assert "1 accounts are still undecided" in messages_after(finance_client, refused)
    fred_client = staff_login(Client(), staff["fred"])
    decide(fred_client, fiona, "keep", "Finance reviewer")
    sealed_checkpoint()
    complete(finance_client, review)
    review.refresh_from_db()
    assert review.completed_by_name == "fiona" and review.checkpoint_id
    done = AuditEvent.objects.get(action="audit.access_review.completed")
    assert (done.meta["kept"], done.meta["removed"], done.meta["accounts"]) == (3, 1, 4)
    assert done.meta["checkpoint_hash"] == review.checkpoint_hash
    again = decide(fred_client, listed["bob"], "remove", "too late")
    assert "already completed" in messages_after(fred_client, again)

    evidence_url = reverse("admin:audit_accessreview_evidence", args=[review.pk])
    download = finance_client.get(evidence_url)
    assert download.status_code == 200
    files = unpack(download.content)
    manifest = checked_manifest(files)
    assert manifest["kind"] == "access-review"
    assert files["report.pdf"].startswith(b"%PDF-")
    assert manifest["population"] == {"accounts": 4}
    assert manifest["decisions"] == {"keep": 3, "remove": 1}
    assert manifest["parameters"]["interval_days"] == review.interval_days
    assert manifest["completed"]["by_name"] == "fiona"
    assert manifest["checkpoint"]["tree_size"] == review.checkpoint_sequence
    rows = {
        row["username"]: row for row in csv.DictReader(io.StringIO(files["accounts.csv"].decode()))
    }
    assert (rows["sam"]["decision"], rows["sam"]["reason"]) == ("remove", "left the company")
    assert rows["fiona"]["decided_by_name"] == "fred"
    assert finance_client.get(evidence_url).content == download.content
    out = tmp_path / "access.zip"
    call_command("audit_review_export", "--access-review", str(review.pk), "--out", str(out))
    assert out.read_bytes() == download.content
    with pytest.raises(CommandError, match="exists"):
        call_command("audit_review_export", "--access-review", str(review.pk), "--out", str(out))
    with pytest.raises(CommandError, match="no access review"):
        call_command("audit_review_export", "--access-review", "0", "--out", str(out) + "2")


def test_one_review_at_a_time_and_only_finance_conducts_it(finance_client, staff):
    start(finance_client)
    second = start(finance_client)
    assert "already open" in messages_after(finance_client, second)
    assert AccessReview.objects.count() == 1
    review = AccessReview.objects.get()
    assert finance_client.get(reverse("admin:audit_accessreview_start")).status_code == 405
    evidence = finance_client.get(reverse("admin:audit_accessreview_evidence", args=[review.pk]))
    assert evidence.status_code == 409
    assert evidence.json()["type"].endswith("/audit-access-review-refused")

    bob_client = staff_login(Client(), staff["bob"])  # Billing admin: no access to reviews
    decision = review.decisions.get(username="sam")
    assert decide(bob_client, decision, "remove").status_code == 403
    assert start(bob_client).status_code == 403
    assert bob_client.get(reverse("admin:audit_accessreview_changelist")).status_code == 403
    staff["sam"].refresh_from_db()
    assert staff["sam"].is_active


def test_a_missing_review_is_a_404_and_an_unknown_outcome_is_refused(finance_client, staff):
    start(finance_client)
    review = AccessReview.objects.get()
    started = AuditEvent.objects.get(action="audit.access_review.started")
    assert (started.target_type, started.target_id) == ("access_review", str(review.pk))
    missing = review.pk + 1000
    for name in ("decide", "complete"):
        url = reverse(f"admin:audit_accessreview_{name}", args=[missing])
        assert finance_client.post(url).status_code == 404
    evidence = reverse("admin:audit_accessreview_evidence", args=[missing])
    assert finance_client.get(evidence).status_code == 404

    # "pending" is a state, not a decision: the account stays undecided.
    bob = review.decisions.get(username="bob")
    refused = decide(finance_client, bob, "pending", "no idea")
    assert "either kept or removed" in messages_after(finance_client, refused)
    bob.refresh_from_db()
    assert bob.decision == AccessDecision.PENDING
    decide(finance_client, bob, "remove", "left")
    bob.refresh_from_db()
    assert bob.decision == AccessDecision.REMOVE


def test_due_and_overdue_on_the_dashboard_and_the_gauge(
    finance_client, staff, settings, django_capture_on_commit_callbacks
):
    assert access_review_gauge_refresh() == 1  # never reviewed: due now
    assert REGISTRY.get_sample_value("tollgate_audit_access_review_overdue") == 1.0
    body = finance_client.get(reverse("admin:audit_dashboard")).content.decode()
    assert "no access review has been completed yet" in body

    start(finance_client)
    review = AccessReview.objects.get()
    fred_client = staff_login(Client(), staff["fred"])
    for decision in review.decisions.all():
        client = fred_client if decision.username == "fiona" else finance_client
        decide(client, decision, "keep")
    sealed_checkpoint()
    with django_capture_on_commit_callbacks(execute=True):  # completion refreshes the gauge
        complete(finance_client, review)
    review.refresh_from_db()
    assert REGISTRY.get_sample_value("tollgate_audit_access_review_overdue") == 0.0
    due = (review.completed_at + timedelta(days=settings.AUDIT_ACCESS_REVIEW_INTERVAL_DAYS)).date()
    body = finance_client.get(reverse("admin:audit_dashboard")).content.decode()
    assert f"Staff access review due {due.isoformat()}" in body

    settings.AUDIT_ACCESS_REVIEW_INTERVAL_DAYS = 0
    assert access_review_gauge_refresh() == 1
    body = finance_client.get(reverse("admin:audit_dashboard")).content.decode()
    assert "Staff access review overdue" in body
