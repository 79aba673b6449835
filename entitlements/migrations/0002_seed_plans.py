"""Seed the product's features and plans (issue 4)."""

from django.db import migrations

FEATURES = {
    "signals_basic": "Basic trading signals",
    "signals_premium": "Premium trading signals",
    "advanced_analytics": "Advanced analytics",
    "vip_support": "VIP support",
    "copy_trading": "Copy trading",
}
ALL = list(FEATURES)
PLANS = {
    "free": ("Free", ["signals_basic"]),
    "premium": ("Premium", ["signals_basic", "signals_premium", "advanced_analytics"]),
    "vip": ("VIP", ALL),
    "enterprise": ("Enterprise", ALL),
}


def seed(apps, schema_editor):
    Feature = apps.get_model("entitlements", "Feature")
    Plan = apps.get_model("entitlements", "Plan")
    PlanFeature = apps.get_model("entitlements", "PlanFeature")
    features = {}
    for key, name in FEATURES.items():
        features[key], _ = Feature.objects.get_or_create(lookup_key=key, defaults={"name": name})
    for code, (name, keys) in PLANS.items():
        plan, _ = Plan.objects.get_or_create(
            code=code, defaults={"name": name, "default_duration_days": 30, "grace_days": 3}
        )
        for key in keys:
            PlanFeature.objects.get_or_create(plan=plan, feature=features[key])


class Migration(migrations.Migration):
    dependencies = [("entitlements", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
