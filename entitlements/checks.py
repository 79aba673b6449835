"""System checks of entitlements' settings."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def entitlements_settings_check(app_configs, **kwargs):
    errors = []
    if settings.ENTITLEMENTS_CACHE_SECONDS <= 0:
        errors.append(
            Error(
                "ENTITLEMENTS_CACHE_SECONDS must be positive.",
                id="entitlements.E001",
            )
        )
    return errors
