"""RFC 9162 (Certificate Transparency v2) Merkle tree over the sealed rows, section 2.1.

Leaf i is the row with sequence i + 1: its hash is SHA-256(0x00 || row hash). An interior node
is SHA-256(0x01 || left || right). The tree of n leaves splits at k, the largest power of two
below n, so every node covers [a, a + 2^l) for a complete subtree, or a right-edge range made
of such complete subtrees. Proofs read complete subtrees through a `subtree(level, index)`
callable (the sealer stores them, audit.tree), so a proof costs O(log n) lookups.

Pure standard library: the evidence pack's standalone verifier carries a copy of the
verification half (verify_inclusion, verify_consistency).
"""

import hashlib
from collections.abc import Callable, Iterable

Subtree = Callable[[int, int], bytes]  # (level, index) -> hash of leaves [index*2^l, (index+1)*2^l)

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(row_hash: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(row_hash)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) straight from the RFC, over leaf hashes (for tests and small trees)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def range_hash(start: int, end: int, subtree: Subtree) -> bytes:
    """MTH of leaves [start, end), a node of the RFC's tree (start aligned to its split)."""
    size = end - start
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return subtree(level, start >> level)
    k = _split(size)
    return node_hash(range_hash(start, start + k, subtree), range_hash(start + k, end, subtree))


def root(size: int, subtree: Subtree) -> bytes:
    return range_hash(0, size, subtree) if size else EMPTY_ROOT


def inclusion_path(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1, leaf to root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(range_hash(start + k, end, subtree))
            end = start + k
        else:
            path.append(range_hash(start, start + k, subtree))
            start += k
    return path[::-1]


def consistency_path(first: int, second: int, subtree: Subtree) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from {first} to {second}")
    proof: list[bytes] = []
    start, end, m, complete = 0, second, first, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(range_hash(start, end, subtree))
            return proof[::-1]
        k = _split(n)
        if m <= k:
            proof.append(range_hash(start + k, end, subtree))
            end = start + k
        else:
            proof.append(range_hash(start, start + k, subtree))
            start, m, complete = start + k, m - k, False


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]
) -> bool:
    """RFC 9162 2.1.4.2 (plus the trivial cases: equal sizes, an empty first tree)."""
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path
    if first > second or not path:
        return False
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
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


class Frontier:
    """The complete subtrees on the right edge of a growing tree (at most log2 n of them):
    appending a leaf merges equal neighbours, and every merge is a new complete node."""

    def __init__(self, size: int = 0, nodes: Iterable[tuple[int, bytes]] = ()):
        self.size = size
        self.stack: list[tuple[int, bytes]] = list(nodes)  # (level, hash), highest level first

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf; the complete nodes (level, index, hash) it finished, level >= 1."""
        self.size += 1
        finished = []
        level, value = 0, leaf
        while self.stack and self.stack[-1][0] == level:
            _, left = self.stack.pop()
            level, value = level + 1, node_hash(left, value)
            finished.append((level, (self.size >> level) - 1, value))
        self.stack.append((level, value))
        return finished

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        value = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            value = node_hash(left, value)
        return value


def frontier_nodes(size: int) -> list[tuple[int, int]]:
    """(level, index) of the complete subtrees that make up the right edge of a tree of `size`,
    highest level first: one per set bit of size."""
    nodes, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes
