"""An independent witness of the checkpoints (`audit_witness`): it holds its own Ed25519 key
and no database access, reads the exported checkpoint documents (a directory or a bucket) and
cosigns each new one only if the application's public key verifies it and an RFC 9162
consistency proof shows that its tree extends (or, for an older tree, is a prefix of) a tree
the witness cosigned before. A rewritten history gives a different tree: no such proof exists,
the witness refuses and exits non-zero, and `audit_verify --witness-public-key` then finds the
newest checkpoint without a cosignature.

Its memory is its own cosignatures, written once next to the checkpoints: keep the location
write-once (Object Lock) so that nobody can make it forget.
"""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import chain, merkle, signing
from audit.checkpoint_files import (
    COSIGNATURE_PREFIX,
    CheckpointStore,
    checkpoint_files_read,
    checkpoint_store,
)

_DOMAIN = b"tollgate audit witness cosignature v1\n"
_COSIGNED_FIELDS = ("checkpoint_id", "sequence", "hash", "root", "created_at")


class WitnessRefusal(Exception):
    """The witness will not cosign: a fork, a rollback, or a document that does not verify."""


def witness_key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()[:16]


def cosignature_name(document: dict[str, Any], key_id: str) -> str:
    return f"{COSIGNATURE_PREFIX}{document['sequence']:012d}-{document['id']}-{key_id}.json"


def cosignature_statement(cosignature: dict[str, Any]) -> bytes:
    signed = {name: cosignature[name] for name in (*_COSIGNED_FIELDS, "witness", "cosigned_at")}
    return _DOMAIN + json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()


def cosignatures_read(
    store: CheckpointStore, public_key: Ed25519PublicKey
) -> dict[int, dict[str, Any]]:
    """This witness's cosignatures by checkpoint id; one that does not verify is a forgery."""
    key_id = witness_key_id(public_key)
    found = {}
    for name in store.names(COSIGNATURE_PREFIX):
        if not name.endswith(f"-{key_id}.json"):
            continue  # another witness's
        cosignature = json.loads(store.get(name))
        if not signing.verifies(
            public_key, cosignature_statement(cosignature), cosignature["cosignature"]
        ):
            raise WitnessRefusal(f"{name}: does not verify with the witness's public key")
        found[cosignature["checkpoint_id"]] = cosignature
    return found


def cosignature_matches(cosignature: dict[str, Any], document: dict[str, Any]) -> bool:
    return cosignature["checkpoint_id"] == document["id"] and all(
        cosignature[name] == document[name] for name in _COSIGNED_FIELDS[1:]
    )


def _app_signature_verifies(document: dict[str, Any], app_key: Ed25519PublicKey) -> bool:
    statement = chain.checkpoint_statement(
        sequence=document["sequence"],
        head_hash=document["hash"],
        root=document["root"],
        created_at=document["created_at"],
    )
    return signing.verifies(app_key, statement, document["signature"])


def _fork(document: dict[str, Any], cosigned_size: int) -> WitnessRefusal:
    return WitnessRefusal(
        f"checkpoint {document['id']} (tree size {document['sequence']}) is not consistent "
        f"with the tree of {cosigned_size} rows this witness cosigned: the history was "
        "rewritten (a fork). Not cosigned."
    )


def _linked(document: dict[str, Any], trusted: dict[int, str]) -> bool:
    """True when a proof ties the document to a cosigned tree; False when nothing links it;
    WitnessRefusal when the document contradicts a cosigned tree."""
    size, root = document["sequence"], document["root"]
    if size in trusted:
        if trusted[size] != root:
            raise _fork(document, size)
        return True
    for proof in document.get("consistency", []):
        if proof["second"] == size and proof["first"] in trusted:
            cosigned_size, own_end, cosigned_end = proof["first"], "second_root", "first_root"
        elif proof["first"] == size and proof["second"] in trusted:
            cosigned_size, own_end, cosigned_end = proof["second"], "first_root", "second_root"
        else:
            continue
        consistent = (
            proof[own_end] == root
            and proof[cosigned_end] == trusted[cosigned_size]
            and merkle.verify_consistency(
                proof["first"],
                proof["second"],
                bytes.fromhex(proof["first_root"]),
                bytes.fromhex(proof["second_root"]),
                [bytes.fromhex(node) for node in proof["path"]],
            )
        )
        if not consistent:
            raise _fork(document, cosigned_size)
        return True
    return False


@dataclass
class Witness:
    store: CheckpointStore
    app_key: Ed25519PublicKey
    key: Ed25519PrivateKey
    now: str
    cosigned: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def cosign(self, document: dict[str, Any]) -> None:
        key_id = witness_key_id(self.key.public_key())
        cosignature = {
            "checkpoint_id": document["id"],
            **{name: document[name] for name in _COSIGNED_FIELDS[1:]},
            "witness": key_id,
            "cosigned_at": self.now,
        }
        cosignature["cosignature"] = signing.sign(cosignature_statement(cosignature), self.key)
        text = json.dumps(cosignature, sort_keys=True) + "\n"
        self.store.put(cosignature_name(document, key_id), text)
        self.cosigned.append(cosignature)


def witness_run(
    *, location: str, app_key: Ed25519PublicKey, key: Ed25519PrivateKey, now: str
) -> Witness:
    """Cosign every checkpoint in `location` that extends what this witness cosigned before.

    The first run trusts the newest checkpoint as it finds it (trust on first use). After
    that, a new checkpoint must carry a consistency proof from a cosigned tree; a newer one
    that has none, or one that contradicts a cosigned tree, is refused (WitnessRefusal).
    Checkpoints older than the witness's first cosignature that nothing links are skipped.
    """
    witness = Witness(checkpoint_store(location), app_key, key, now)
    mine = cosignatures_read(witness.store, key.public_key())
    documents = [d for d in checkpoint_files_read(location) if d["algorithm"] == "Ed25519"]
    for document in documents:
        if not _app_signature_verifies(document, app_key):
            raise WitnessRefusal(
                f"checkpoint {document['id']} (tree size {document['sequence']}): its "
                "signature does not verify with the application's public key. Not cosigned."
            )
        if document["id"] in mine and not cosignature_matches(mine[document["id"]], document):
            raise _fork(document, mine[document["id"]]["sequence"])
    trusted = {c["sequence"]: c["root"] for c in mine.values()}
    newest_cosigned = max(mine, default=0)
    pending = [d for d in documents if d["id"] not in mine]
    if not trusted and pending:
        first = pending.pop()  # documents are sorted: the largest tree, newest last
        witness.cosign(first)
        trusted[first["sequence"]], newest_cosigned = first["root"], first["id"]
    for document in pending:
        if _linked(document, trusted):
            witness.cosign(document)
            trusted[document["sequence"]] = document["root"]
            newest_cosigned = max(newest_cosigned, document["id"])
        elif document["id"] > newest_cosigned:
            raise WitnessRefusal(
                f"checkpoint {document['id']} (tree size {document['sequence']}) is newer "
                "than the last one cosigned, and no consistency proof ties it to a cosigned "
                "tree (a rollback, or a rewritten history). Not cosigned."
            )
        else:
            witness.skipped.append(document)
    return witness
