"""One prefix for the project's metrics: `tollgate_`, except the three counters whose names the
project was seeded with and dashboards outside this repository already query."""

from prometheus_client.metrics import MetricWrapperBase

from audit import metrics as audit_metrics
from billing import metrics as billing_metrics
from entitlements import metrics as entitlement_metrics
from staff import metrics as staff_metrics

MODULES = (billing_metrics, entitlement_metrics, audit_metrics, staff_metrics)
# Kept exactly as they are (as exported, counters with _total).
SEED_NAMES = {
    "billing_webhook_invalid_sig_total",
    "billing_webhook_replay_block_total",
    "idempotent_hits_total",
}


def exported_names() -> set[str]:
    names = set()
    for module in MODULES:
        for metric in vars(module).values():
            if isinstance(metric, MetricWrapperBase):
                suffix = "_total" if metric._type == "counter" else ""
                names.add(metric._name + suffix)
    return names


def test_every_project_metric_is_prefixed_tollgate_but_the_seeds_three():
    names = exported_names()
    assert names >= SEED_NAMES
    assert sorted(n for n in names - SEED_NAMES if not n.startswith("tollgate_")) == []


def test_each_app_prefixes_its_metrics_with_its_name():
    for module in MODULES:
        app = module.__name__.split(".")[0].removesuffix("s")  # entitlements -> entitlement
        for metric in vars(module).values():
            if isinstance(metric, MetricWrapperBase):
                name = metric._name + ("_total" if metric._type == "counter" else "")
                assert name in SEED_NAMES or name.startswith(f"tollgate_{app}"), name
