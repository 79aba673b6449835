"""Print (or apply, as the owner) the grants of the application's database role."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from audit.db_roles import grant_statements


class Command(BaseCommand):
    help = (
        "Print the GRANTs that give the application's PostgreSQL role SELECT/INSERT/UPDATE/"
        "DELETE on the project's tables but only SELECT and INSERT on the append-only audit "
        "tables. With --apply, run them (connected as the tables' owner, after every migrate)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--app-role", required=True, help="role the web/worker/beat use")
        parser.add_argument(
            "--owner-role", help="role that owns the tables and runs migrate (default: current)"
        )
        parser.add_argument("--schema", default="public")
        parser.add_argument("--apply", action="store_true", help="run them, in one transaction")

    def handle(
        self,
        *args: Any,
        app_role: str,
        owner_role: str | None = None,
        schema: str = "public",
        apply: bool = False,
        **options: Any,
    ) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("Database roles are PostgreSQL's: DATABASE_URL is not PostgreSQL.")
        if owner_role is None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_user")
                owner_role = cursor.fetchone()[0]
        if owner_role == app_role:
            raise CommandError("The application role must not be the owner role.")
        try:
            statements = grant_statements(app_role=app_role, owner_role=owner_role, schema=schema)
        except ValueError as error:
            raise CommandError(str(error)) from error
        if apply:
            with transaction.atomic(), connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        for statement in statements:
            self.stdout.write(statement + ";")
