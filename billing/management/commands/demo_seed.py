"""Demo data for `make run`: a superuser to log in with (plans come from migrations)."""

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo superuser (credentials from DEMO_ADMIN_USERNAME/PASSWORD or generated)."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = os.environ.get("DEMO_ADMIN_USERNAME", "admin")
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Demo superuser '{username}' already exists; password unchanged.")
            return
        password = os.environ.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        # Printed once, on creation only: the password is stored hashed and never shown again.
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo superuser created. Log in at http://127.0.0.1:8000/admin/ as "
                f"'{username}' with password: {password}"
            )
        )
