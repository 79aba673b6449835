"""Support in a real browser: grant a feature by hand and revoke it, each only with a reason."""

import re

from playwright.sync_api import expect

from audit import actions
from audit.models import ActorRole, AuditEvent
from entitlements.models import Entitlement, Feature

GRANT_REASON = "Goodwill after the outage of ticket INC-42"
REVOKE_REASON = "Goodwill period over (INC-42 closed)"


def audit_rows(action):
    return list(
        AuditEvent.objects.filter(action=action.name).values_list(
            "actor_name", "actor_role", "target_repr", "reason"
        )
    )


def submit_blank_reason(page, button: str) -> None:
    """An empty reason is stopped by the browser (the field is required); a reason of spaces
    gets past it and must be refused by the server, with the form's error shown."""
    page.get_by_role("button", name=button).click()
    assert page.locator("#id_reason").evaluate("field => field.validity.valueMissing")
    page.fill("#id_reason", "   ")
    page.get_by_role("button", name=button).click()
    expect(page.locator(".errorlist")).to_contain_text("This field is required.")


def test_support_grants_and_revokes_only_with_a_reason(
    page, shot, sign_in, staff_member, django_user_model
):
    customer = django_user_model.objects.create_user(username="carol", password="unused-pw-1")
    feature = Feature.objects.order_by("lookup_key").first()
    support, device = staff_member("sam", "Support")
    sign_in(support, device)

    page.goto("/admin/entitlements/entitlement/")
    page.get_by_role("link", name="Grant by hand").click()
    page.wait_for_url(re.compile(r"/admin/entitlements/entitlement/grant/$"))
    # Users are picked by autocomplete (Django admin's select2): typing asks the server.
    page.locator("#id_users + .select2 .select2-selection").click()
    page.locator(".select2-search__field").fill("caro")
    page.locator(".select2-results__option", has_text="carol").click()
    page.select_option("#id_feature", label=feature.lookup_key)
    submit_blank_reason(page, "Grant")
    shot("grant-refused-without-reason")
    assert not Entitlement.objects.filter(user=customer).exists()
    assert audit_rows(actions.GRANT_CREATED) == []

    page.fill("#id_reason", GRANT_REASON)
    page.get_by_role("button", name="Grant").click()
    page.wait_for_url(re.compile(r"/admin/entitlements/entitlement/$"))
    expect(page.locator(".messagelist")).to_contain_text("Granted 1 entitlement(s).")
    row = page.locator("#result_list tbody tr", has_text="carol")
    expect(row.locator("td.field-feature")).to_have_text(feature.lookup_key)
    expect(row.locator("td.field-source")).to_have_text(re.compile("manual", re.IGNORECASE))
    shot("granted")
    granted = Entitlement.objects.get(user=customer)
    assert (granted.feature, granted.source, granted.revoked_at) == (
        feature,
        Entitlement.Source.MANUAL,
        None,
    )
    [(actor, role, _, reason)] = audit_rows(actions.GRANT_CREATED)
    assert (actor, role, reason) == ("sam", ActorRole.SUPPORT, GRANT_REASON)

    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "revoke_selected")
    page.get_by_role("button", name="Go", exact=True).click()
    expect(page.get_by_role("heading", name="Revoke 1 entitlement", exact=True)).to_be_visible()
    submit_blank_reason(page, "Revoke")
    shot("revoke-refused-without-reason")
    granted.refresh_from_db()
    assert granted.revoked_at is None
    assert audit_rows(actions.GRANT_REVOKED) == []

    page.fill("#id_reason", REVOKE_REASON)
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".messagelist")).to_contain_text("Revoked 1 entitlement(s).")
    shot("revoked")
    granted.refresh_from_db()
    assert granted.revoked_at is not None
    [(actor, role, _, reason)] = audit_rows(actions.GRANT_REVOKED)
    assert (actor, role, reason) == ("sam", ActorRole.SUPPORT, REVOKE_REASON)
