"""Production cannot run without the second factor, and /metrics is not public by default."""

import pytest

from tests.config.test_settings import production_env, run_python

PROBE = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.METRICS_ENABLED, bool(s.METRICS_TOKEN))"
)
TOKEN = "metrics-" + "t0ken" * 8


def test_settings_refuse_to_relax_the_second_factor_without_debug():
    refused = run_python(["-c", PROBE], DEBUG="false", ADMIN_REQUIRE_2FA="false")
    assert refused.returncode != 0
    assert "ADMIN_REQUIRE_2FA=false is only allowed with DEBUG on" in refused.stderr
    in_production = run_python(["-c", PROBE], **production_env(ADMIN_REQUIRE_2FA="false"))
    assert in_production.returncode != 0
    assert "ADMIN_REQUIRE_2FA" in in_production.stderr
    # The local demo (make run) may relax it.
    demo = run_python(["-c", PROBE], DEBUG="true", ADMIN_REQUIRE_2FA="false")
    assert demo.returncode == 0, demo.stderr


def test_production_serves_metrics_only_when_enabled_or_given_a_token():
    def loaded(**env):
        result = run_python(["-c", PROBE], **production_env(**env))
        assert result.returncode == 0, result.stderr
        return result.stdout.split()[-2:]

    assert loaded() == ["False", "False"]
    assert loaded(METRICS_TOKEN=TOKEN) == ["True", "True"]
    assert loaded(METRICS_ENABLED="true") == ["True", "False"]
    # Development keeps them open for make run and the docs' curl examples.
    development = run_python(["-c", PROBE])
    assert development.stdout.split()[-2:] == ["True", "False"]


def test_check_deploy_warns_when_metrics_are_served_without_a_token():
    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        **production_env(METRICS_ENABLED="true"),
    )
    assert result.returncode != 0
    assert "staff.W001" in result.stdout + result.stderr


@pytest.mark.django_db
def test_metrics_disabled_is_not_found(client, settings):
    settings.METRICS_ENABLED = False
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer"])
def test_metrics_token_is_required_when_set(client, settings, authorization):
    settings.METRICS_ENABLED, settings.METRICS_TOKEN = True, TOKEN
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response.json()["type"].endswith("/metrics-token-required")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"django_http_requests" not in response.content


@pytest.mark.django_db
def test_metrics_with_the_token_are_served(client, settings):
    settings.METRICS_ENABLED, settings.METRICS_TOKEN = True, TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content
