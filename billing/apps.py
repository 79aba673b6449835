from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from billing import checks, receivers  # noqa: F401 - checks register on import

        post_migrate.connect(
            receivers.seed_billing_admin_group,
            sender=self,
            dispatch_uid="billing.seed_billing_admin_group",
        )
