"""The product's features and plans (issue 4), seeded into an empty catalogue.

Used by the data migration 0002 and again after every `migrate`/`flush` (post_migrate) when the
catalogue is empty, so a flushed database (transactional tests, a wiped staging database) gets
its plans back. A catalogue that has plans is never touched: staff edits stay as they are.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for mypy: the data migration must not load the current models
    from entitlements.models import Feature, Plan, PlanFeature

FEATURES = {
    "signals_basic": "Basic trading signals",
    "signals_premium": "Premium trading signals",
    "advanced_analytics": "Advanced analytics",
    "vip_support": "VIP support",
    "copy_trading": "Copy trading",
}
_PREMIUM = ["signals_basic", "signals_premium", "advanced_analytics"]
PLANS = {
    "free": ("Free", ["signals_basic"]),
    "premium": ("Premium", _PREMIUM),
    "vip": ("VIP", list(FEATURES)),
    "enterprise": ("Enterprise", list(FEATURES)),
}


def catalog_seed(
    *,
    feature_model: type["Feature"],
    plan_model: type["Plan"],
    plan_feature_model: type["PlanFeature"],
) -> bool:
    """Create the features and plans when no plan exists yet; returns whether it did.

    Takes the model classes so the data migration can pass its historical models (typed as the
    current ones, whose fields they have)."""
    if plan_model.objects.exists():
        return False
    features = {}
    for key, name in FEATURES.items():
        features[key], _ = feature_model.objects.get_or_create(
            lookup_key=key, defaults={"name": name}
        )
    for code, (name, keys) in PLANS.items():
        plan, _ = plan_model.objects.get_or_create(
            code=code, defaults={"name": name, "default_duration_days": 30, "grace_days": 3}
        )
        for key in keys:
            plan_feature_model.objects.get_or_create(plan=plan, feature=features[key])
    return True
