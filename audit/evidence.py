"""Evidence packs: rows exactly as hashed, with the signed checkpoints and Merkle proofs that
let an auditor check them offline with the shipped verifier (audit/evidence_verifier.py).

A pack is a directory:
  rows.jsonl         one row per line: {"hash", "prev_hash", "row"}; "row" is the canonical JSON
                     string that was hashed (SHA-256 of prev_hash + row = hash)
  proofs.jsonl       per row, its RFC 9162 inclusion proof in the covering checkpoint's tree
  checkpoints.json   the Ed25519 checkpoints up to the covering one (the last)
  consistency.json   consistency proofs linking consecutive checkpoints
  query.json         the query, its upper bound and the population (rows matching it)
  public_key.pem     the key that signed checkpoints and manifest
  verify_evidence.py the standalone verifier (Python + cryptography)
  manifest.json      SHA-256 of every file above; manifest.sig: its Ed25519 signature
Nothing in it depends on when it was made: the same query and bound give the same bytes.
"""

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from audit import chain, signing
from audit.checkpoint_files import checkpoint_document
from audit.models import AuditCheckpoint, AuditEvent
from audit.tree import consistency_proof, inclusion_paths

VERIFIER = Path(__file__).with_name("evidence_verifier.py")
_COLUMNS = (*chain.CONTENT_FIELDS, "prev_hash", "hash")
_SEQUENCE = chain.CONTENT_FIELDS.index("sequence")
_PROOF_BATCH = 1000  # rows whose inclusion proofs are read together


class EvidenceError(Exception):
    pass


@dataclass(frozen=True)
class EvidenceQuery:
    action: str = ""
    since: str = ""  # chain.format_time spelling, or ""
    until: str = ""
    to_sequence: int | None = None  # default: the newest signed checkpoint


def _json(document: object) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _signed_checkpoints(up_to: int) -> list[AuditCheckpoint]:
    """The Ed25519 checkpoints up to the first one covering `up_to`, one per size."""
    signed = AuditCheckpoint.objects.filter(algorithm=AuditCheckpoint.Algorithm.ED25519)
    covering = signed.filter(sequence__gte=up_to).order_by("sequence", "id").first()
    if covering is None:
        raise EvidenceError(f"no signed checkpoint covers sequence {up_to}: run audit_checkpoint")
    earlier: dict[int, AuditCheckpoint] = {}
    for checkpoint in signed.filter(sequence__lt=covering.sequence).order_by("id"):
        earlier.setdefault(checkpoint.sequence, checkpoint)  # per size, the oldest
    return [*sorted(earlier.values(), key=lambda c: c.sequence), covering]


def _rows(query: EvidenceQuery, up_to: int) -> Iterator[tuple[Any, ...]]:
    rows = AuditEvent.objects.filter(sequence__isnull=False, sequence__lte=up_to)
    if query.action:
        rows = rows.filter(action=query.action)
    if query.since:
        rows = rows.filter(occurred_at__gte=query.since)
    if query.until:
        rows = rows.filter(occurred_at__lt=query.until)
    last = 0
    while True:
        chunk = list(
            rows.filter(sequence__gt=last)
            .order_by("sequence")
            .values_list(*_COLUMNS)[: settings.AUDIT_CHUNK_SIZE]
        )
        if not chunk:
            return
        yield from chunk
        last = chunk[-1][chain.CONTENT_FIELDS.index("sequence")]


def evidence_pack_write(*, query: EvidenceQuery, directory: str) -> dict[str, Any]:
    """Write the pack into `directory` (new or empty); returns its manifest."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise EvidenceError(f"{directory} is not empty: a pack is never written over another")
    latest = (
        AuditCheckpoint.objects.filter(algorithm=AuditCheckpoint.Algorithm.ED25519)
        .order_by("-sequence")
        .values_list("sequence", flat=True)
        .first()
    )
    up_to = query.to_sequence or latest
    if not up_to:
        raise EvidenceError("no signed checkpoint yet: run audit_checkpoint")
    checkpoints = _signed_checkpoints(up_to)
    size = checkpoints[-1].sequence
    population = 0
    with (
        open(folder / "rows.jsonl", "w", encoding="utf-8", newline="\n") as rows_file,
        open(folder / "proofs.jsonl", "w", encoding="utf-8", newline="\n") as proofs_file,
    ):
        rows = _rows(query, up_to)
        while batch := list(itertools.islice(rows, _PROOF_BATCH)):
            sequences = [values[_SEQUENCE] for values in batch]
            for values, path in zip(batch, inclusion_paths(sequences, size), strict=True):
                content = chain.canonical_json(values[:-2])
                rows_file.write(
                    _json({"hash": values[-1], "prev_hash": values[-2], "row": content}) + "\n"
                )
                proof = {"path": [node.hex() for node in path], "sequence": values[_SEQUENCE]}
                proofs_file.write(_json(proof) + "\n")
            population += len(batch)
    documents = [checkpoint_document(checkpoint) for checkpoint in checkpoints]
    links = [
        consistency_proof(older.sequence, newer.sequence)
        for older, newer in itertools.pairwise(checkpoints)
    ]
    described = {
        "action": query.action, "since": query.since, "until": query.until,
        "to_sequence": up_to, "population": population,
    }  # fmt: skip
    (folder / "checkpoints.json").write_text(_json(documents) + "\n", encoding="utf-8")
    (folder / "consistency.json").write_text(_json(links) + "\n", encoding="utf-8")
    (folder / "query.json").write_text(_json(described) + "\n", encoding="utf-8")
    (folder / "public_key.pem").write_text(signing.public_key_pem(), encoding="utf-8")
    (folder / "verify_evidence.py").write_bytes(VERIFIER.read_bytes())
    names = sorted(path.name for path in folder.iterdir())
    manifest = {
        "files": {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names},
        "format": "tollgate-audit-evidence/1",
        "population": population,
        "to_sequence": up_to,
        "tree_size": size,
    }
    manifest_bytes = (_json(manifest) + "\n").encode()
    (folder / "manifest.json").write_bytes(manifest_bytes)
    (folder / "manifest.sig").write_text(signing.sign(manifest_bytes) + "\n", encoding="utf-8")
    return {**manifest, "sha256": hashlib.sha256(manifest_bytes).hexdigest()}
