"""Cosign the exported checkpoints as an independent witness (no database access)."""

import json
from argparse import ArgumentParser
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.checkpoint_files import CheckpointConflict
from audit.signing import private_key_from, public_key_from_pem, public_key_pem
from audit.witness import WitnessRefusal, witness_run


class Command(BaseCommand):
    help = (
        "As an independent witness with its own Ed25519 key, cosign each new checkpoint in "
        "LOCATION (a directory or s3://bucket/prefix) that the application's public key "
        "verifies and that extends the trees cosigned before. Exit 1 on a fork or rollback. "
        "Needs no database: run it on another host, with another operator."
    )
    requires_system_checks = []  # some checks read the database, which the witness never has

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "location", nargs="?", help="checkpoint directory or s3://bucket/prefix"
        )
        parser.add_argument(
            "--public-key", metavar="FILE", help="the application's public key (PEM), required"
        )
        parser.add_argument(
            "--key-file",
            metavar="FILE",
            help="the witness's private key (default: AUDIT_WITNESS_KEY or AUDIT_WITNESS_KEY_FILE)",
        )
        parser.add_argument(
            "--print-public-key",
            action="store_true",
            help="print the witness's public key (PEM) for verifiers, and stop",
        )

    def _witness_key(self, key_file: str | None) -> Ed25519PrivateKey:
        try:
            if key_file:
                return private_key_from(Path(key_file).read_text(encoding="utf-8"))
            if settings.AUDIT_WITNESS_KEY:
                return private_key_from(settings.AUDIT_WITNESS_KEY)
            if settings.AUDIT_WITNESS_KEY_FILE:
                return private_key_from(
                    Path(settings.AUDIT_WITNESS_KEY_FILE).read_text(encoding="utf-8")
                )
        except (OSError, ValueError) as error:
            raise CommandError(f"cannot read the witness's key: {error}") from error
        raise CommandError("no witness key: pass --key-file or set AUDIT_WITNESS_KEY(_FILE)")

    def handle(
        self,
        *args: Any,
        location: str | None = None,
        key_file: str | None = None,
        **options: Any,
    ) -> None:
        key = self._witness_key(key_file)
        if options["print_public_key"]:
            self.stdout.write(public_key_pem(key), ending="")
            return
        if not location or not options.get("public_key"):
            raise CommandError("give LOCATION and --public-key (the application's, PEM)")
        try:
            app_key = public_key_from_pem(Path(options["public_key"]).read_text())
        except (OSError, ValueError) as error:
            raise CommandError(f"cannot read the application's public key: {error}") from error
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            witness = witness_run(location=location, app_key=app_key, key=key, now=now)
        except (WitnessRefusal, CheckpointConflict) as error:
            raise CommandError(f"refused: {error}", returncode=1) from error
        for cosignature in witness.cosigned:
            self.stdout.write(json.dumps(cosignature))
        for document in witness.skipped:
            self.stderr.write(
                f"skipped checkpoint {document['id']} (tree size {document['sequence']}): "
                "older than this witness's first cosignature, nothing links it"
            )
