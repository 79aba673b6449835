"""Checkpoints outside the database: one JSON file per checkpoint in AUDIT_CHECKPOINT_DIR,
created with O_EXCL (an existing file is never overwritten) and read back by
`audit_verify --against DIR`. Point the directory at storage the database's superuser cannot
rewrite (another host's mount, a WORM volume, a bucket synced with Object Lock)."""

import json
import os
from pathlib import Path

from audit import chain
from audit.models import AuditCheckpoint


def checkpoint_document(checkpoint: AuditCheckpoint) -> dict:
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
    return f"checkpoint-{checkpoint.sequence:012d}-{checkpoint.pk}.json"


def checkpoint_file_write(checkpoint: AuditCheckpoint, directory: str) -> Path:
    """Write the checkpoint's file; FileExistsError rather than overwrite one."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_file_name(checkpoint)
    text = json.dumps(checkpoint_document(checkpoint), sort_keys=True) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def checkpoint_files_read(directory: str) -> list[dict]:
    """Every checkpoint document in `directory`, oldest first."""
    documents = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(Path(directory).glob("checkpoint-*.json"))
    ]
    return sorted(documents, key=lambda document: (document["sequence"], document["id"]))
