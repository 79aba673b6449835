"""Print the public key that verifies the audit checkpoints (PEM), for auditors."""

from typing import Any

from django.core.management.base import BaseCommand

from audit.signing import public_key_pem, uses_development_key


class Command(BaseCommand):
    help = (
        "Print the Ed25519 public key (PEM) of the checkpoint signing key. Publish it: anyone "
        "holding it verifies checkpoints, proofs and evidence packs, and cannot forge them."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if uses_development_key():
            self.stderr.write("warning: this is the development key, known to everyone")
        self.stdout.write(public_key_pem(), ending="")
