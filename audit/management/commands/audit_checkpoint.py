"""Sign the audit chain's head and print the checkpoint as JSON for write-once storage."""

import json

from django.core.management.base import BaseCommand, CommandError

from audit import chain
from audit.errors import AuditError
from audit.services import audit_checkpoint_sign


class Command(BaseCommand):
    help = (
        "Write an HMAC-SHA256 signed checkpoint of the audit chain's head (AUDIT_CHECKPOINT_KEY) "
        "and print it as one JSON line, to be copied to write-once (WORM) storage."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--at",
            type=int,
            help="sign the row at this sequence instead of the head (anchors a pruned prefix)",
        )

    def handle(self, *args, at=None, **options):
        try:
            checkpoint = audit_checkpoint_sign(at=at)
        except AuditError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(json.dumps(checkpoint_document(checkpoint)))


def checkpoint_document(checkpoint) -> dict:
    return {
        "sequence": checkpoint.sequence,
        "hash": checkpoint.hash,
        "created_at": chain.format_time(checkpoint.created_at),
        "signature": checkpoint.signature,
        "algorithm": "HMAC-SHA256",
    }
