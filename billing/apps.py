from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from djstripe.models import WebhookEndpoint

        from billing import checks, receivers  # noqa: F401 - checks register on import
        from billing.models import WebhookSecret

        for model in (WebhookEndpoint, WebhookSecret):
            for name, signal in (("saved", post_save), ("deleted", post_delete)):
                signal.connect(
                    receivers.forget_cached_endpoint_secrets,
                    sender=model,
                    dispatch_uid=f"billing.forget_endpoint_secrets.{model.__name__}.{name}",
                )
