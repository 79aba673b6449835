"""System checks: the second factor may only be relaxed for a local demo, and /metrics is not
served to anyone who can reach the application in a deployment."""

from collections.abc import Sequence

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=False)
def second_factor_required_outside_debug(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: object
) -> list[checks.CheckMessage]:
    # Settings already refuse to load this way (config/settings.py); this catches a settings
    # module that relaxes it after loading ours.
    if not settings.ADMIN_REQUIRE_2FA and not settings.DEBUG:
        return [
            checks.Error(
                "ADMIN_REQUIRE_2FA is off while DEBUG is off.",
                hint="Staff must verify a second factor in production; only a local demo "
                "with DEBUG on may relax it.",
                id="staff.E001",
            )
        ]
    return []


@checks.register(checks.Tags.security, deploy=True)
def metrics_not_open_to_everyone(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: object
) -> list[checks.CheckMessage]:
    if settings.METRICS_ENABLED and not settings.METRICS_TOKEN:
        return [
            checks.Warning(
                "/metrics is served without a token (METRICS_ENABLED on, METRICS_TOKEN empty).",
                hint="Set METRICS_TOKEN and give it to Prometheus as a bearer token, or make "
                "sure your proxy serves /metrics to the monitoring network only.",
                id="staff.W001",
            )
        ]
    return []
