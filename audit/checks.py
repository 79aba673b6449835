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


@checks.register(checks.Tags.security, deploy=True)
def signing_key_check(app_configs, **kwargs):
    from audit.signing import uses_development_key

    if uses_development_key():
        return [
            checks.Error(
                "The audit checkpoints are signed with the development Ed25519 key.",
                hint="Set AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE (see docs/audit.md).",
                id="audit.E002",
            )
        ]
    return []
