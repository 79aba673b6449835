"""Sign the audit chain's head and Merkle root; print the checkpoint as JSON."""

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.checkpoint_files import checkpoint_document
from audit.errors import AuditError
from audit.services import audit_checkpoint_sign


class Command(BaseCommand):
    help = (
        "Write an Ed25519-signed checkpoint (tree size, chain head, Merkle root, time) of the "
        "sealed rows, also into AUDIT_CHECKPOINT_DIR when set, and print it as one JSON line."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--at",
            type=int,
            help="sign the row at this sequence instead of the head (anchors a pruned prefix)",
        )

    def handle(self, *args: Any, at: int | None = None, **options: Any) -> None:
        try:
            checkpoint = audit_checkpoint_sign(at=at)
        except AuditError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(json.dumps(checkpoint_document(checkpoint)))
