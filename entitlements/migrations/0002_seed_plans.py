"""Seed the product's features and plans (issue 4); see entitlements/catalog.py."""

from django.db import migrations

from entitlements.catalog import catalog_seed


def seed(apps, schema_editor):
    catalog_seed(
        feature_model=apps.get_model("entitlements", "Feature"),
        plan_model=apps.get_model("entitlements", "Plan"),
        plan_feature_model=apps.get_model("entitlements", "PlanFeature"),
    )


class Migration(migrations.Migration):
    dependencies = [("entitlements", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
