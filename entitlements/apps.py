from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "entitlements"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Wiring only: receivers and checks register themselves on import.
        from entitlements import checks, receivers  # noqa: F401
