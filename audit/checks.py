"""System checks for the audit trail's configuration."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connection

from audit.db_roles import role_findings

DEV_KEY = "dev-audit-checkpoint-key"


@checks.register(checks.Tags.security, deploy=True)
def checkpoint_key_check(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[checks.CheckMessage]:
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
def database_role_check(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """The role the application connects as must not be able to switch the triggers off."""
    if connection.vendor != "postgresql":
        return []
    try:
        found = role_findings()
    except DatabaseError:
        connection.close()
        return []  # nothing to inspect: the deploy's migrate step fails on its own
    hint = "Connect as the application role (docs/deploy.md, Database roles)."
    if found["superuser"]:
        return [
            checks.Warning(
                f"The database role {found['role']!r} is a superuser: it can disable the "
                "audit trail's triggers.",
                hint=hint,
                id="audit.W001",
            )
        ]
    warnings: list[checks.CheckMessage] = []
    if found["owned"]:
        owned = ", ".join(f"{table} (owner {owner})" for table, owner in found["owned"])
        warnings.append(
            checks.Warning(
                f"The database role {found['role']!r} owns or is a member of the owner of the "
                f"audit tables: {owned}. It can ALTER TABLE ... DISABLE TRIGGER.",
                hint=hint,
                id="audit.W002",
            )
        )
    if found["writable"]:
        warnings.append(
            checks.Warning(
                f"The database role {found['role']!r} may UPDATE, DELETE, TRUNCATE or create "
                f"triggers on {', '.join(found['writable'])}.",
                hint="Run `python manage.py db_roles --app-role <role> --apply` as the owner.",
                id="audit.W003",
            )
        )
    return warnings


def signing_key_check(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[checks.CheckMessage]:
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


@checks.register()
def staff_roles_map_to_trail_roles(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Every role of staff/roles.py must name an actor_role the trail knows."""
    from audit.models import ActorRole
    from staff.roles import ROLES, UNKNOWN_STAFF_AUDIT_ROLE

    named = {role.audit_role for role in ROLES} | {UNKNOWN_STAFF_AUDIT_ROLE}
    unknown = sorted(named - set(ActorRole.values))
    if unknown:
        return [
            checks.Error(
                f"staff/roles.py names actor roles the audit trail does not know: {unknown}.",
                hint="Add them to audit.models.ActorRole (with a migration) or fix the registry.",
                id="audit.E003",
            )
        ]
    return []
