#!/usr/bin/env python3
"""Verify a Tollgate audit evidence pack offline: python verify_evidence.py PACK_DIR

Needs Python 3.10+ and the `cryptography` package, nothing else (no Django, no database).
Checks, and exits 0 only if all hold:
  1. manifest.json is signed (manifest.sig) by public_key.pem, and every file it lists has the
     SHA-256 it states (compare public_key.pem with the key Tollgate's operator published);
  2. every checkpoint in checkpoints.json is signed by that key, and consecutive checkpoints
     are linked by the RFC 9162 consistency proofs in consistency.json;
  3. every row in rows.jsonl hashes to its stored hash (SHA-256 of prev_hash + the row's
     canonical JSON, exactly as Tollgate hashed it), and its RFC 9162 inclusion proof in
     proofs.jsonl leads to the root of the covering (last) checkpoint;
  4. the rows are in sequence order, match the query in query.json, and their number is the
     population stated there.

This file is a copy of audit/evidence_verifier.py, shipped in every pack.
"""

import hashlib
import itertools
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hash(row_hash: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(row_hash)).digest()


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2 (equal sizes: empty proof, equal roots)."""
    if first == second:
        return not path and first_root == second_root
    if first == 0 or first > second or not path:
        return first == 0 and not path
    if first & (first - 1) == 0:
        path = [first_root, *path]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _signed(public_key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_pack(pack: Path) -> list[str]:
    """The problems found; empty when the pack verifies."""
    public_key = load_pem_public_key((pack / "public_key.pem").read_bytes())
    if not isinstance(public_key, Ed25519PublicKey):  # Tollgate signs with Ed25519 only
        return ["public_key.pem: not an Ed25519 public key"]
    manifest_bytes = (pack / "manifest.json").read_bytes()
    if not _signed(public_key, manifest_bytes, (pack / "manifest.sig").read_text().strip()):
        return ["manifest.json: signature does not verify with public_key.pem"]
    manifest = json.loads(manifest_bytes)
    problems = [
        f"{name}: SHA-256 differs from the manifest"
        for name, digest in manifest["files"].items()
        if hashlib.sha256((pack / name).read_bytes()).hexdigest() != digest
    ]
    if problems:
        return problems

    checkpoints = json.loads((pack / "checkpoints.json").read_text())
    for checkpoint in checkpoints:
        statement = _canonical({key: checkpoint[key] for key in ("created_at", "hash", "root")}
                               | {"sequence": checkpoint["sequence"]})  # fmt: skip
        if not _signed(public_key, statement, checkpoint["signature"]):
            problems.append(f"checkpoint {checkpoint['sequence']}: signature does not verify")
    links = json.loads((pack / "consistency.json").read_text())
    for (older, newer), link in zip(itertools.pairwise(checkpoints), links, strict=False):
        path = [bytes.fromhex(node) for node in link["path"]]
        sizes = (older["sequence"], newer["sequence"])
        roots = (bytes.fromhex(older["root"]), bytes.fromhex(newer["root"]))
        linked = (link["first"], link["second"]) == sizes and verify_consistency(
            *sizes, *roots, path
        )
        if not linked:
            problems.append(f"checkpoints {sizes[0]} -> {sizes[1]}: not linked")
    if len(links) != max(0, len(checkpoints) - 1):
        problems.append("consistency.json: a link between checkpoints is missing")
    covering = checkpoints[-1]
    size, root = covering["sequence"], bytes.fromhex(covering["root"])

    query = json.loads((pack / "query.json").read_text())
    rows = (pack / "rows.jsonl").read_text().splitlines()
    proofs = (pack / "proofs.jsonl").read_text().splitlines()
    if len(rows) != len(proofs) or len(rows) != query["population"]:
        problems.append("rows.jsonl, proofs.jsonl and the population do not agree")
    last = 0
    for line, proof_line in zip(rows, proofs, strict=False):
        row, proof = json.loads(line), json.loads(proof_line)
        content = json.loads(row["row"])
        sequence = content["sequence"]
        expected = hashlib.sha256((row["prev_hash"] + row["row"]).encode()).hexdigest()
        if expected != row["hash"]:
            problems.append(f"row {sequence}: content does not match its hash")
        path = [bytes.fromhex(node) for node in proof["path"]]
        if proof["sequence"] != sequence or not verify_inclusion(
            sequence - 1, size, leaf_hash(row["hash"]), path, root
        ):
            problems.append(f"row {sequence}: not in the tree of checkpoint {size}")
        if sequence <= last or sequence > size:
            problems.append(f"row {sequence}: out of order or beyond the checkpoint")
        if not _matches(content, query):
            problems.append(f"row {sequence}: does not match the query")
        last = sequence
    return problems


def _matches(content: dict[str, Any], query: dict[str, Any]) -> bool:
    return bool(
        (not query.get("action") or content["action"] == query["action"])
        and (not query.get("since") or content["occurred_at"] >= query["since"])
        and (not query.get("until") or content["occurred_at"] < query["until"])
        and content["sequence"] <= query["to_sequence"]
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: verify_evidence.py PACK_DIR", file=sys.stderr)
        return 2
    pack = Path(argv[1])
    problems = verify_pack(pack)
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        return 1
    query = json.loads((pack / "query.json").read_text())
    print(f"OK {query['population']} rows verified against the signed checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
