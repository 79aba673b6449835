"""stripe_webhook_endpoint: creates/updates a local endpoint, rotates secrets, prints the path."""

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from djstripe.models import WebhookEndpoint

from billing.models import WebhookSecret
from tests.billing.conftest import Endpoint, customer_event, deliver, new_secret

PATH = re.compile(r"^/stripe/webhook/([0-9a-f-]{36})/$")


def run(*args) -> list[str]:
    out = io.StringIO()
    call_command("stripe_webhook_endpoint", *args, stdout=out)
    return out.getvalue().splitlines()


def test_creates_endpoint_and_prints_path_last_never_the_secret(db, client):
    secret = new_secret()
    lines = run("--secret", secret, "--tolerance", "120")
    match = PATH.match(lines[-1])
    assert match, lines
    assert secret not in "\n".join(lines)
    endpoint = WebhookEndpoint.objects.get(djstripe_uuid=match.group(1))
    assert endpoint.id.startswith("we_local_") and endpoint.djstripe_tolerance == 120
    assert list(
        WebhookSecret.objects.filter(endpoint=endpoint).values_list("secret", flat=True)
    ) == [secret]


def test_rotation_runbook(db, client):
    old, new = new_secret(), new_secret()
    path = run("--secret", old)[-1]
    uuid = PATH.match(path).group(1)
    assert run("--uuid", uuid, "--secret", old, "--secret", new)[-1] == path
    assert WebhookSecret.objects.count() == 2
    assert run("--uuid", uuid, "--secret", new)[-1] == path
    assert list(WebhookSecret.objects.values_list("secret", flat=True)) == [new]
    assert WebhookEndpoint.objects.count() == 1
    target = Endpoint(path=path, secret=new, model=None)
    assert deliver(client, target, customer_event()).status_code == 200
    assert deliver(client, target, customer_event(), secret=old).status_code == 400
    # Without --uuid, the local endpoint of the same --url is the one updated.
    assert run("--secret", old, "--secret", new)[-1] == path
    assert WebhookSecret.objects.count() == 2
    assert run("--secret", new, "--url", "https://example.com/hook")[-1] != path


@pytest.mark.parametrize(
    "args",
    [
        ["--secret", "not-a-secret"],
        ["--secret", new_secret(), "--tolerance", "0"],
        ["--secret", new_secret(), "--uuid", "not-a-uuid"],
    ],
)
def test_refuses_bad_input(db, args):
    with pytest.raises(CommandError) as error:
        run(*args)
    assert "whsec_" not in str(error.value).replace("(whsec_...)", "")


def test_system_checks_flag_bad_settings(settings):
    from billing.checks import check_billing_settings

    assert check_billing_settings() == []
    settings.BILLING_EVENT_MAX_RETRIES = -1
    settings.PRODUCTION = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    found = sorted(issue.id for issue in check_billing_settings())
    assert found == ["billing.E001", "billing.W001"]


def test_system_checks_refuse_a_zero_rejection_window(settings):
    # The throttle divides by the window: 0 would make every refusal a 500.
    from billing.checks import check_billing_settings

    settings.BILLING_WEBHOOK_REJECTION_WINDOW_SECONDS = 0
    assert [issue.id for issue in check_billing_settings()] == ["billing.E003"]


def test_tolerance_is_at_most_an_hour(db):
    assert PATH.match(run("--secret", new_secret(), "--tolerance", "3600")[-1])
    assert WebhookEndpoint.objects.get().djstripe_tolerance == 3600
    with pytest.raises(CommandError, match=r"^--tolerance must be between 1 and 3600 seconds\.$"):
        run("--secret", new_secret(), "--tolerance", "3601")
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.parametrize(("ttl", "found"), [(1, []), (0, ["billing.E002"]), (-5, ["billing.E002"])])
def test_dedup_ttl_below_one_second_is_billing_e002(settings, ttl, found):
    from billing.checks import check_billing_settings

    settings.BILLING_WEBHOOK_DEDUP_TTL = ttl
    assert [issue.id for issue in check_billing_settings()] == found
