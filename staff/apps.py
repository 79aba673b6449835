from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """django.contrib.admin with Tollgate's staff site: every admin.register lands on it."""

    default_site = "staff.admin_site.StaffAdminSite"


class StaffConfig(AppConfig):
    """Staff access hardening: second factor, throttled logins, session limits."""

    name = "staff"
    label = "staff"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from staff import checks, receivers  # noqa: F401 - registration on import
