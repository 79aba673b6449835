"""Support's command line: show, grant and revoke a user's entitlements; lift a block."""

import json
from argparse import ArgumentParser
from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from config.context import Actor, acting_as
from entitlements import blocks, selectors, services
from entitlements.errors import ApprovalRequired, EntitlementError
from entitlements.models import Entitlement


class Command(BaseCommand):
    help = (
        "Show, grant or revoke a user's entitlements, or lift a block (grant, revoke and "
        "unblock require --reason)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        show = sub.add_parser("show", help="Print the user's active entitlements as JSON.")
        show.add_argument("user", help="username, email or id")
        grant = sub.add_parser("grant", help="Grant a feature or a whole plan by hand.")
        grant.add_argument("user", nargs="+", help="one or more users (a bulk grant)")
        what = grant.add_mutually_exclusive_group(required=True)
        what.add_argument("--feature")
        what.add_argument("--plan")
        grant.add_argument("--expires", help="ISO date or datetime (UTC); none = no expiry")
        revoke = sub.add_parser("revoke", help="Revoke one feature or every manual grant.")
        revoke.add_argument("user")
        which = revoke.add_mutually_exclusive_group(required=True)
        which.add_argument("--feature")
        which.add_argument("--all-manual", action="store_true")
        revoke.add_argument(
            "--block-until",
            help="a revoked Stripe grant stays blocked until lifted, or until this ISO date",
        )
        unblock = sub.add_parser("unblock", help="Lift the block of a revoked Stripe feature.")
        unblock.add_argument("user")
        unblock.add_argument("--feature", required=True)
        for subparser in (grant, revoke, unblock):
            subparser.add_argument("--reason", default="", help="required: kept in the audit")
            subparser.add_argument(
                "--by", help="the staff member acting (active, Staff status); else the system"
            )

    def handle(self, *args: Any, **options: Any) -> None:
        # Refused before anything is looked up or changed.
        if options["action"] != "show" and not options["reason"].strip():
            raise CommandError("--reason is required: say why (it is kept in the audit trail).")
        identifiers = options["user"] if isinstance(options["user"], list) else [options["user"]]
        users = [_user(identifier) for identifier in identifiers]
        if options["action"] == "show":
            self._show(users[0])
            return
        staff = _staff(options["by"]) if options.get("by") else None
        actor = Actor(kind="user", user_id=staff.pk) if staff else Actor(kind="system")
        try:
            with acting_as(actor):
                rows = self._change(users, staff, actor, options)
        except ApprovalRequired as pending:
            self.stdout.write(pending.detail)
            return
        except EntitlementError as error:
            raise CommandError(error.detail) from error
        names = ", ".join(str(user) for user in users)
        noun = "block(s)" if options["action"] == "unblock" else "entitlement(s)"
        self.stdout.write(f"{options['action']}: {len(rows)} {noun} for {names}")

    def _change(
        self, users: list[User], staff: User | None, actor: Actor, options: dict[str, Any]
    ) -> Sequence[Entitlement | None]:
        if options["action"] == "unblock":
            lifted = blocks.feature_unblock(
                user=users[0],
                feature_key=options["feature"],
                lifted_by=staff,
                actor=actor,
                reason=options["reason"],
            )
            return [None] * lifted
        if options["action"] == "grant":
            return services.entitlements_grant_manual(
                users=users,
                feature_key=options["feature"],
                plan_code=options["plan"],
                expires_at=_parse_expiry(options["expires"]),
                reason=options["reason"],
                granted_by=staff,
                actor=actor,
            )
        return services.entitlements_revoke_for_user(
            user=users[0],
            feature_key=options["feature"],
            all_manual=options["all_manual"],
            reason=options["reason"],
            revoked_by=staff,
            actor=actor,
            block_until=_parse_expiry(options["block_until"], flag="--block-until"),
        )

    def _show(self, user: User) -> None:
        rows = selectors.user_active_entitlements(user_id=user.pk, now=timezone.now())
        entitlements = [
            {
                "feature": row.feature.lookup_key,
                "source": row.source,
                "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            }
            for row in rows
        ]
        blocked = [
            {
                "feature": block.feature.lookup_key,
                "reason": block.reason,
                "since": block.created_at.isoformat(),
                "ends_at": block.ends_at.isoformat() if block.ends_at else None,
            }
            for block in selectors.open_blocks(user_id=user.pk, now=timezone.now())
        ]
        self.stdout.write(json.dumps({"entitlements": entitlements, "blocks": blocked}))


def _user(identifier: str) -> User:
    user = selectors.user_by_identifier(identifier)
    if user is None:
        raise CommandError(f"No single user matches {identifier!r}.")
    return user


def _staff(identifier: str) -> User:
    """--by must name an active staff member: the trail names them as the actor."""
    staff = selectors.user_by_identifier(identifier)
    if staff is None:
        raise CommandError(f"No single user matches --by {identifier!r}.")
    if not (staff.is_active and staff.is_staff):
        raise CommandError(f"--by {identifier!r} is not an active staff member.")
    return staff


def _parse_expiry(raw: str | None, *, flag: str = "--expires") -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as error:
        raise CommandError(f"{flag} must be an ISO date or datetime, not {raw!r}") from error
    if len(raw) == 10:  # a bare date means the end of that day
        value = datetime.combine(value.date(), time.max)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
