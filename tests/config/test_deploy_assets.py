"""The deployment assets in docs/deploy/ stay true to the code: the compose file's services and
environment, gunicorn's multiprocess-metrics hooks, and every metric the Grafana dashboard and
the Prometheus alerts query."""

import json
import os
import re
import runpy
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from prometheus_client import REGISTRY

import billing.errors
import entitlements.metrics
from config.problems import PROBLEM_TYPES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy"
APP_SERVICES = ("migrate", "web", "worker", "beat", "audit-verify")
# Read by gunicorn, prometheus_client, Django or the official images, not by config/settings.py.
STANDARD_ENV = {
    "PROMETHEUS_MULTIPROC_DIR",
    "DJANGO_SETTINGS_MODULE",
    "WEB_CONCURRENCY",
    "FORWARDED_ALLOW_IPS",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    # The pgbouncer image's (edoburu/pgbouncer): its pool, its auth, its upstream.
    "POOL_MODE",
    "AUTH_TYPE",
    "MAX_CLIENT_CONN",
    "DEFAULT_POOL_SIZE",
}
# Read by the deploy files themselves, not by Python: the postgres init script creates the two
# database roles with these passwords; the migrate service runs migrations as the owner.
INIT_SCRIPT = DEPLOY / "postgres-init" / "10-tollgate-roles.sh"
DEPLOY_FILE_ENV = {
    "POSTGRES_OWNER_PASSWORD": INIT_SCRIPT,
    "POSTGRES_APP_PASSWORD": INIT_SCRIPT,
    "MIGRATE_DATABASE_URL": None,  # the migrate service's command
}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
PROMQL_WORDS |= {"unless", "bool", "offset", "inf", "nan"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def settings_env_names() -> set[str]:
    source = (ROOT / "config" / "settings.py").read_text()
    names = set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"", source))
    return names | set(settings.PRODUCTION_REQUIRED)


def defined_metric_names() -> set[str]:
    """Every sample name the code registers (counters' _total, histograms' _bucket, ...)."""
    import django_prometheus.db.metrics  # noqa: F401 - registers its metrics
    from django_prometheus.middleware import Metrics

    import audit.metrics  # noqa: F401
    import billing.metrics  # noqa: F401
    import staff.metrics  # noqa: F401

    Metrics.get_instance()  # django-prometheus registers its HTTP metrics lazily
    assert entitlements.metrics.CHANGES is not None
    return set(REGISTRY._names_to_collectors)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions,
    keywords, label names or label values."""
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r'"[^"]*"', "", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def test_metric_name_extraction_skips_functions_labels_and_keywords():
    expr = 'histogram_quantile(0.95, sum by (le, view) (rate(a_bucket{x="b_c"}[5m]))) > 0 or b'
    assert metric_names(expr) == {"a_bucket", "b"}


def test_compose_has_every_service_with_image_command_and_healthcheck(compose):
    services = compose["services"]
    assert set(services) >= {"web", "worker", "beat", "postgres", "redis", "migrate"}
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("postgres", "redis", "web", "worker", "beat"):
        assert services[name]["healthcheck"]["test"], name
    for name in APP_SERVICES:
        service = services[name]
        assert service["image"] and service["command"], name
        assert (ROOT / service["build"]["dockerfile"]).is_file()
        if name != "migrate":
            assert service["depends_on"]  # nothing app-side starts before its dependencies
    assert " ".join(services["web"]["command"]).startswith(
        "gunicorn -c docs/deploy/gunicorn.conf.py"
    )
    worker = " ".join(services["worker"]["command"])
    assert "worker" in worker and "--prefetch-multiplier 1" in worker
    assert "beat" in services["beat"]["command"]
    assert "migrate --noinput" in " ".join(services["migrate"]["command"])
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_compose_environment_names_exist_in_settings_and_cover_production(compose):
    known = settings_env_names() | STANDARD_ENV | set(DEPLOY_FILE_ENV)
    for name, service in compose["services"].items():
        unknown = set(service.get("environment") or {}) - known
        assert not unknown, f"{name} sets variables the code never reads: {unknown}"
    web_env = compose["services"]["web"]["environment"]
    assert set(settings.PRODUCTION_REQUIRED) <= set(web_env)
    assert web_env["DJANGO_ENV"] == "production"
    # Workers and web share one metrics directory, on a volume the file declares.
    for name in ("web", "worker"):
        service = compose["services"][name]
        assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/var/run/tollgate/metrics"
        assert "metrics:/var/run/tollgate/metrics" in service["volumes"]
    used = {
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes") or []
        if not volume.startswith((".", "/"))  # bind mounts of files beside the compose file
    }
    assert used <= set(compose["volumes"])


# Variables Compose itself reads (docs/deploy.md says so), not the app.
COMPOSE_ONLY_ENV = {
    "TOLLGATE_IMAGE",
    "TOLLGATE_PORT",
    # Read by the PostgreSQL image's init script (the two database roles), not by the app.
    "POSTGRES_OWNER_PASSWORD",
    "POSTGRES_APP_PASSWORD",
}
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def _interpolations(text: str) -> list[str]:
    """Every `$...` of the compose file, as Compose reads it (`$$` is a literal dollar)."""
    return re.findall(r"\$(\{[^}\n]*\}?|\w*)", text.replace("$$", ""))


def test_compose_file_is_what_docker_compose_config_would_accept(compose):
    """What `docker compose config` checks, without Docker (the machines that run the suite
    have Docker without its compose plugin): interpolations, references between services,
    conditions and the commands the deploy guide documents."""
    text = (DEPLOY / "docker-compose.yml").read_text()
    for found in _interpolations(text):
        assert re.fullmatch(r"\{[A-Z][A-Z0-9_]*(:?-[^}$]*)?\}", found), f"bad: ${found}"
    compose_env = {re.match(r"\{([A-Z0-9_]+)", found).group(1) for found in _interpolations(text)}
    guide = (ROOT / "docs" / "deploy.md").read_text()
    known = settings_env_names() | STANDARD_ENV
    for name in compose_env - known:
        assert name in COMPOSE_ONLY_ENV and f"`{name}`" in guide, f"${{{name}}} is undocumented"
    services = compose["services"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        depends = service.get("depends_on") or {}
        for dependency, spec in depends.items():
            assert dependency in services and dependency != name, (name, dependency)
            assert spec["condition"] in DEPENDS_ON_CONDITIONS, (name, dependency)
            if spec["condition"] == "service_healthy":
                assert services[dependency]["healthcheck"]["test"], (name, dependency)
        for port in service.get("ports") or []:
            assert re.fullmatch(r"(\$\{[A-Z_]+:-\d+\}|\d+):\d+", port), port
    # The deploy guide's process table names the commands the compose file runs.
    table = dict(re.findall(r"^\| (web|worker|beat|release) \| `([^`]+)`", guide, flags=re.M))
    assert " ".join(services["web"]["command"]) == table["web"]
    worker = " ".join(services["worker"]["command"])
    assert all(word in worker.split() for word in table["worker"].split()), worker
    assert " ".join(services["beat"]["command"]).startswith(table["beat"])
    assert "python manage.py migrate --noinput" in table["release"]
    assert table["release"].split("`")[0].strip() in " ".join(services["migrate"]["command"])
    # Start order as the guide tells it: the worker after web is healthy, everything app-side
    # after migrate, migrate after healthy PostgreSQL, PgBouncer and Redis.
    assert services["worker"]["depends_on"]["web"]["condition"] == "service_healthy"
    migrate_after = services["migrate"]["depends_on"]
    assert {dependency: spec["condition"] for dependency, spec in migrate_after.items()} == {
        "postgres": "service_healthy",
        "pgbouncer": "service_healthy",
        "redis": "service_healthy",
    }


def test_gunicorn_config_empties_the_metrics_directory_and_marks_dead_workers(
    tmp_path, monkeypatch
):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_123.db").write_bytes(b"stale")
    (metrics_dir / "gauge_livemostrecent_4242.db").write_bytes(b"dead worker")
    (metrics_dir / "gauge_livemostrecent_77.db").write_bytes(b"live worker")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))

    assert config["workers"] == 3 and config["threads"] >= 1 and config["timeout"] <= 60
    config["child_exit"](None, type("Worker", (), {"pid": 4242})())
    assert sorted(os.listdir(metrics_dir)) == ["counter_123.db", "gauge_livemostrecent_77.db"]
    config["on_starting"](None)
    assert metrics_dir.is_dir() and os.listdir(metrics_dir) == []


def test_grafana_dashboard_queries_only_metrics_the_code_defines():
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    defined = defined_metric_names()
    queried = set()
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, target["expr"]
            assert names <= defined, f"{panel['title']}: {names - defined} is not defined"
            queried |= names
    # The dashboard covers each app's metrics.
    assert {"tollgate_billing_dead_letters", "billing_webhook_invalid_sig_total"} <= queried
    assert "tollgate_entitlement_changes_total" in queried
    assert "tollgate_audit_verifications_total" in queried


def test_prometheus_alerts_are_valid_and_name_real_metrics_and_problems():
    rules = yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text())
    defined = defined_metric_names()
    slugs = set(PROBLEM_TYPES)
    assert billing.errors.WebhookSignatureInvalid.slug in slugs
    alerts = {}
    for group in rules["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) >= {"alert", "expr", "labels", "annotations"}
            assert rule["labels"]["severity"] in {"page", "ticket"}
            assert rule["annotations"]["summary"]
            names = metric_names(rule["expr"])
            assert names and names <= defined, f"{rule['alert']}: {names - defined}"
            for slug in re.findall(r'problem!?=~?"([^"]+)"', rule["expr"]):
                assert slug in slugs, f"{rule['alert']}: unknown problem type {slug}"
            alerts[rule["alert"]] = names
    assert alerts["TollgateWebhookInvalidSignatureSpike"] == {"billing_webhook_invalid_sig_total"}
    assert alerts["TollgateDeadLetters"] == {"tollgate_billing_dead_letters"}
    assert alerts["TollgateAuditChainBroken"] == {"tollgate_audit_verifications_total"}


def test_compose_runs_migrations_as_the_owner_and_the_app_as_its_own_role(compose):
    services = compose["services"]
    for name, reader in DEPLOY_FILE_ENV.items():
        if reader is not None:
            assert f"${name}" in reader.read_text(), f"{reader.name} does not read {name}"
    app_url = services["web"]["environment"]["DATABASE_URL"]
    assert app_url.startswith("postgres://tollgate_app:")
    for name in APP_SERVICES:
        assert services[name]["environment"]["DATABASE_URL"] == app_url, name
    migrate = services["migrate"]
    assert migrate["environment"]["MIGRATE_DATABASE_URL"].startswith("postgres://tollgate_owner:")
    steps = migrate["command"][-1].split(" && ")
    assert steps == [
        'DATABASE_URL="$$MIGRATE_DATABASE_URL" python manage.py migrate --noinput',
        'DATABASE_URL="$$MIGRATE_DATABASE_URL" python manage.py db_roles --app-role tollgate_app '
        "--apply",
        "python manage.py check --deploy",  # as the application role: audit.W001-W003
    ]
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_USER"] == "postgres"  # never the app's role
    assert "./postgres-init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    script = INIT_SCRIPT.read_text()
    assert "tollgate_owner LOGIN NOSUPERUSER" in script
    assert "tollgate_app LOGIN NOSUPERUSER" in script
    assert (DEPLOY / "postgres-init").is_dir() and os.access(INIT_SCRIPT, os.X_OK)
