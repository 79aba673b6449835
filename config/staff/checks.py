"""System checks: the second factor may only be relaxed for a local demo."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=False)
def second_factor_required_outside_debug(app_configs=None, **kwargs):
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
