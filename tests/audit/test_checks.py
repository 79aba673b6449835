"""System checks: the audit admin passes Django's checks; a weak checkpoint key is reported."""

from django.core import checks
from django.core.management import call_command

from audit.checks import checkpoint_key_check


def test_project_passes_the_system_checks(db):
    # manage.py runs these before every command: a broken admin declaration stops them all.
    call_command("check", "--fail-level", "ERROR", verbosity=0)


def test_development_or_short_checkpoint_key_is_a_deploy_error(settings):
    settings.AUDIT_CHECKPOINT_KEY = "dev-audit-checkpoint-key"
    assert [error.id for error in checkpoint_key_check(None)] == ["audit.E001"]
    settings.AUDIT_CHECKPOINT_KEY = "short"
    assert [error.id for error in checkpoint_key_check(None)] == ["audit.E001"]
    settings.AUDIT_CHECKPOINT_KEY = "x" * 40
    assert checkpoint_key_check(None) == []
    assert checks.Tags.security in checkpoint_key_check.tags
