"""Checkpoints outside the database: one JSON document per checkpoint, written once to a
directory (AUDIT_CHECKPOINT_DIR) or an S3-compatible bucket (AUDIT_CHECKPOINT_BUCKET,
audit.checkpoint_bucket), read back by `audit_verify --against LOCATION` and `audit_witness`.

Both stores share one small interface (`put`, `names`, `get`): a document is never overwritten.
Writing the same bytes again is a harmless retry; different bytes under an existing name are a
conflict, logged as an error and raised (CheckpointConflict), never written.
"""

import json
import os
from pathlib import Path
from typing import Any, Protocol

import structlog

from audit import chain
from audit.models import AuditCheckpoint

log = structlog.get_logger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
COSIGNATURE_PREFIX = "cosignature-"


class CheckpointConflict(FileExistsError):
    """A different document already exists under this name: someone wrote it before us."""


class CheckpointStore(Protocol):
    def put(self, name: str, text: str) -> None:
        """Create `name` with `text`, never overwriting (CheckpointConflict if it differs)."""

    def names(self, prefix: str) -> list[str]:
        """The documents' names that start with `prefix`, sorted."""

    def get(self, name: str) -> str: ...


def conflict(location: str, name: str) -> CheckpointConflict:
    log.error("audit.checkpoint.conflict", location=location, name=name)
    return CheckpointConflict(
        f"{location}: {name} already exists with different content; it was not overwritten. "
        "Someone wrote a checkpoint document before this one: investigate."
    )


class DirectoryStore:
    """Files created with O_EXCL, read-only, fsynced."""

    def __init__(self, directory: str):
        self.folder = Path(directory)

    def put(self, name: str, text: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except FileExistsError:
            if path.read_text(encoding="utf-8") == text:
                return
            raise conflict(str(self.folder), name) from None
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def names(self, prefix: str) -> list[str]:
        return sorted(path.name for path in self.folder.glob(f"{prefix}*.json"))

    def get(self, name: str) -> str:
        return (self.folder / name).read_text(encoding="utf-8")


def checkpoint_store(location: str) -> CheckpointStore:
    """`s3://bucket/prefix` is a bucket, anything else a directory."""
    if location.startswith("s3://"):
        from audit.checkpoint_bucket import BucketStore

        return BucketStore.from_url(location)
    return DirectoryStore(location)


def checkpoint_document(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    return {
        "id": checkpoint.pk,
        "sequence": checkpoint.sequence,
        "hash": checkpoint.hash,
        "root": checkpoint.root,
        "created_at": chain.format_time(checkpoint.created_at),
        "algorithm": checkpoint.algorithm,
        "signature": checkpoint.signature,
    }


def checkpoint_file_name(checkpoint: AuditCheckpoint) -> str:
    return f"{CHECKPOINT_PREFIX}{checkpoint.sequence:012d}-{checkpoint.pk}.json"


def _consistency_links(checkpoint: AuditCheckpoint) -> list[dict[str, Any]]:
    """RFC 9162 consistency proofs that tie this checkpoint to its neighbours, so a witness
    holding only the exported documents can check it: from the previous signed checkpoint
    (the largest tree not larger than this one) and, for a checkpoint of an older tree (an
    anchor signed with --at), to the largest tree signed so far."""
    from audit.tree import consistency_proof

    signed = AuditCheckpoint.objects.filter(algorithm=AuditCheckpoint.Algorithm.ED25519)
    previous = (
        signed.filter(sequence__lte=checkpoint.sequence, pk__lt=checkpoint.pk)
        .order_by("-sequence", "-pk")
        .first()
    )
    largest = signed.filter(sequence__gt=checkpoint.sequence).order_by("-sequence", "-pk").first()
    links = []
    for first, second in ((previous, checkpoint), (checkpoint, largest)):
        if first is None or second is None:
            continue
        try:
            proof = consistency_proof(first.sequence, second.sequence)
        except LookupError:  # tree nodes of a pruned prefix are gone: no proof, say nothing
            continue
        links.append(proof)  # first, second, first_root, second_root, path
    return links


def checkpoint_export_document(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    document = checkpoint_document(checkpoint)
    if checkpoint.algorithm == AuditCheckpoint.Algorithm.ED25519:
        document["consistency"] = _consistency_links(checkpoint)
    return document


def checkpoint_file_write(checkpoint: AuditCheckpoint, location: str) -> str:
    """Write the checkpoint's document once to a directory or bucket; returns its name."""
    name = checkpoint_file_name(checkpoint)
    text = json.dumps(checkpoint_export_document(checkpoint), sort_keys=True) + "\n"
    checkpoint_store(location).put(name, text)
    return name


def checkpoint_locations() -> list[str]:
    """Where every new checkpoint is exported: AUDIT_CHECKPOINT_DIR and AUDIT_CHECKPOINT_BUCKET."""
    from django.conf import settings

    locations = [settings.AUDIT_CHECKPOINT_DIR] if settings.AUDIT_CHECKPOINT_DIR else []
    if settings.AUDIT_CHECKPOINT_BUCKET:
        from audit.checkpoint_bucket import bucket_url

        locations.append(bucket_url(settings.AUDIT_CHECKPOINT_BUCKET))
    return locations


def checkpoint_export(checkpoint: AuditCheckpoint, locations: list[str]) -> None:
    """Write the checkpoint to every location; one that fails does not stop the others, and
    the first failure is raised after all were tried (the checkpoint command fails loudly)."""
    failures = []
    for location in locations:
        try:
            checkpoint_file_write(checkpoint, location)
        except Exception as error:  # reported below, after the other locations were tried
            log.error("audit.checkpoint.export_failed", location=location, error=str(error))
            failures.append(error)
    if failures:
        raise failures[0]


def checkpoint_files_read(location: str) -> list[dict[str, Any]]:
    """Every checkpoint document in a directory or bucket, oldest first."""
    store = checkpoint_store(location)
    documents = [json.loads(store.get(name)) for name in store.names(CHECKPOINT_PREFIX)]
    return sorted(documents, key=lambda document: (document["sequence"], document["id"]))
