"""System checks for the audit trail's configuration."""

from django.conf import settings
from django.core import checks

DEV_KEY = "dev-audit-checkpoint-key"


@checks.register(checks.Tags.security, deploy=True)
def checkpoint_key_check(app_configs, **kwargs):
    key = settings.AUDIT_CHECKPOINT_KEY
    if key == DEV_KEY or len(key) < 32:
        return [
            checks.Error(
                "AUDIT_CHECKPOINT_KEY is the development key or shorter than 32 characters.",
                hint="Set a random key of 32+ characters; keep it outside the database.",
                id="audit.E001",
            )
        ]
    return []
