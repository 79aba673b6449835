"""The compliance dashboard: today's figures from the trail, dead letters, the chain's status."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.models import StripeEvent
from tests.stripe_fixtures import event, resource, unique_id


def figures(response) -> dict[str, str]:
    return {label: str(value) for label, value in response.context["figures"]}


def test_dashboard_shows_todays_activity_and_the_chain(finance_client, trail, tamper):
    trail(3)  # payments
    trail(2, action="billing.webhook.rejected", outcome="failure")
    trail(4, action="entitlements.grant.created")
    trail(1, action="entitlements.grant.revoked")
    trail(1, action="entitlements.grant.lapsed")
    for status in ("dead", "dead", "applied"):
        payload = event("invoice.paid", resource("invoice", id=unique_id("in")))
        StripeEvent.objects.create(
            event_id=payload["id"], type="invoice.paid", created=payload["created"],
            payload=payload, status=status,
        )  # fmt: skip
    call_command("audit_checkpoint")
    call_command("audit_verify", verbosity=0)

    response = finance_client.get(reverse("admin:audit_dashboard"))
    assert response.status_code == 200
    assert figures(response) == {
        "Payment events today": "3",
        "Failed payments today": "0",
        "Rejected webhooks today": "2",
        "Dead letters reprocessed today": "0",
        "Grants today": "4",
        "Revokes and lapses today": "2",
    }
    assert response.context["dead_letters"] == 2
    body = response.content.decode()
    assert "intact" in body
    # 13 = the rows above plus fiona's role change and sign-in (auth.* access rows).
    assert "Latest checkpoint</th><td>#13" in body

    tamper(("DELETE FROM audit_auditevent WHERE sequence = %s", [2]))
    with pytest.raises(CommandError):
        call_command("audit_verify", verbosity=0)
    broken = finance_client.get(reverse("admin:audit_dashboard")).content.decode()
    assert "BROKEN at sequence 2" in broken
