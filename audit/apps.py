from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Wiring only: receivers and checks register themselves on import.
        from audit import checks, receivers, receivers_access, receivers_permissions  # noqa: F401
