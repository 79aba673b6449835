"""Print a Merkle inclusion proof of one row, or a consistency proof between two tree sizes."""

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.checkpoint_files import checkpoint_document
from audit.models import AuditCheckpoint
from audit.sealing import sealed_head
from audit.tree import consistency_proof, inclusion_proof


class Command(BaseCommand):
    help = (
        "Print (JSON) the RFC 9162 inclusion proof of row SEQ in the tree of the latest "
        "checkpoint (or --size N), with that checkpoint; or, with --consistency M N, the "
        "consistency proof that the tree of M rows is a prefix of the tree of N rows."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("sequence", nargs="?", type=int, help="the row's sequence")
        parser.add_argument("--size", type=int, help="tree size (default: latest checkpoint)")
        parser.add_argument("--consistency", nargs=2, type=int, metavar=("M", "N"))

    def handle(
        self,
        *args: Any,
        sequence: int | None = None,
        size: int | None = None,
        consistency: list[int] | None = None,
        **options: Any,
    ) -> None:
        head, _ = sealed_head()
        if consistency:
            first, second = consistency
            if not 0 < first <= second <= head:
                raise CommandError(f"need 0 < M <= N <= {head} (the sealed rows)")
            self.stdout.write(json.dumps(consistency_proof(first, second)))
            return
        if sequence is None:
            raise CommandError("give a sequence, or --consistency M N")
        checkpoint = None
        if size is None:
            checkpoint = (
                AuditCheckpoint.objects.filter(sequence__gte=sequence, algorithm="Ed25519")
                .order_by("-sequence", "-id")
                .first()
            )
            if checkpoint is None:
                raise CommandError(f"no signed checkpoint covers row {sequence} yet")
            size = checkpoint.sequence
        if not 0 < sequence <= size <= head:
            raise CommandError(f"need 0 < SEQ <= size <= {head} (the sealed rows)")
        proof = inclusion_proof(sequence, size)
        if checkpoint is not None:
            proof["checkpoint"] = checkpoint_document(checkpoint)
        self.stdout.write(json.dumps(proof))
