"""Walk the audit chain; exit 0 when intact, 1 naming the first bad sequence number."""

import json
import os
from argparse import ArgumentParser
from pathlib import Path
from typing import Any, TextIO, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit.selectors import head_sequence
from audit.services import chain_verification_run
from audit.signing import public_key_from_pem


def _public_key(path: str | None) -> Ed25519PublicKey | None:
    if not path:
        return None
    try:
        return public_key_from_pem(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read the public key {path}: {error}") from error


class Command(BaseCommand):
    help = (
        "Verify every link of the audit hash chain, every checkpoint signature, and that no "
        "checkpointed tail was cut. Exit 0 when intact, 1 naming the first bad sequence."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--chunk-size", type=int, default=None, help="rows per query")
        parser.add_argument(
            "--workers",
            type=int,
            default=min(4, os.cpu_count() or 1),
            help="processes that hash chunks in parallel (default: CPUs, at most 4)",
        )
        parser.add_argument(
            "--against",
            metavar="LOCATION",
            help="also check the checkpoints exported to a directory (AUDIT_CHECKPOINT_DIR) or "
            "a bucket (s3://bucket/prefix, AUDIT_CHECKPOINT_BUCKET)",
        )
        parser.add_argument(
            "--witness-public-key",
            metavar="FILE",
            help="with --against: the witness's public key (PEM); its cosignatures must verify "
            "and the newest checkpoint must be cosigned",
        )
        parser.add_argument(
            "--public-key",
            metavar="FILE",
            help="PEM public key to verify Ed25519 checkpoints with (default: the configured "
            "signing key's; an auditor passes the published one)",
        )
        parser.add_argument(
            "--no-record",
            action="store_true",
            help="do not append the result to the trail (e.g. on a read-only replica)",
        )

    def handle(
        self,
        *args: Any,
        chunk_size: int | None = None,
        no_record: bool = False,
        workers: int = 1,
        **options: Any,
    ) -> None:
        public_key = _public_key(options.get("public_key"))
        witness_key = _public_key(options.get("witness_public_key"))
        if witness_key is not None and not options.get("against"):
            raise CommandError("--witness-public-key needs --against (where the cosignatures are)")
        with tqdm(
            total=head_sequence(),
            unit="row",
            # The wrapped stream: django-stubs do not declare it (their __getattr__ says Callable).
            file=cast(TextIO, self.stderr._out),
            disable=options["verbosity"] == 0,
        ) as bar:
            result = chain_verification_run(
                chunk_size=chunk_size,
                progress=bar.update,
                record=not no_record,
                workers=max(1, workers),
                public_key=public_key,
                against=options.get("against"),
                witness_key=witness_key,
            )
        if not result.ok:
            raise CommandError(
                f"audit chain broken at sequence {result.first_bad_sequence}: {result.problem}",
                returncode=1,
            )
        summary = {"ok": True, "rows": result.rows, "head": result.head_sequence}
        if result.first_sequence != 1:
            # A pruned prefix: must match the records of the pruning change (docs/audit.md).
            summary["from"] = result.first_sequence
        self.stdout.write(json.dumps(summary))
