"""System checks of entitlements' settings."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, register


@register()
def entitlements_settings_check(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if settings.ENTITLEMENTS_CACHE_SECONDS <= 0:
        errors.append(
            Error(
                "ENTITLEMENTS_CACHE_SECONDS must be positive.",
                id="entitlements.E001",
            )
        )
    return errors
