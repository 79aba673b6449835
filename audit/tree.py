"""The Merkle tree of the sealed rows, stored as its complete subtrees (level >= 1).

The sealer adds the nodes each batch completes (audit.sealing); proofs read O(log n) of them
in two queries, whatever the size of the trail. Leaves (level 0) are read from the rows.
"""

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.db import connection

from audit import merkle
from audit.models import AuditEvent, AuditTreeNode

_TABLE = AuditTreeNode._meta.db_table
_Result = TypeVar("_Result")
# (sequence, hash) of sealed rows: both are set once a row is sealed (the model allows NULL for
# rows the sealer has not reached), and every query here selects sealed rows only.
_SealedRows = list[tuple[int, str]]


# Column names are this module's constants, never input: the f-string is safe.
_PG_NODES_INSERT = (
    f'INSERT INTO {AuditTreeNode._meta.db_table} (level, "index", hash) '  # noqa: S608
    "SELECT * FROM unnest(%s::smallint[], %s::bigint[], string_to_array(%s, ' ')) "
    'ON CONFLICT (level, "index") DO NOTHING'
)


class StoredTree:
    """subtree(level, index) from the database, fetched in one round per proof: a first pass
    with placeholder hashes names every node the proof needs (the shape of a proof does not
    depend on hash values), then they are read together."""

    def __init__(self) -> None:
        self.known: dict[tuple[int, int], bytes] = {}
        self.wanted: set[tuple[int, int]] = set()

    def _recording(self, level: int, index: int) -> bytes:
        self.wanted.add((level, index))
        return bytes(32)

    def _stored(self, level: int, index: int) -> bytes:
        try:
            return self.known[level, index]
        except KeyError:
            raise LookupError(f"tree node ({level}, {index}) is not stored") from None

    def fetch(self, wanted: Iterable[tuple[int, int]]) -> None:
        leaves = [index + 1 for level, index in wanted if level == 0]
        sealed = AuditEvent.objects.filter(sequence__in=leaves).values_list("sequence", "hash")
        for sequence, row_hash in cast(_SealedRows, sealed):
            self.known[0, sequence - 1] = merkle.leaf_hash(row_hash)
        nodes = [(level, index) for level, index in wanted if level > 0]
        if nodes:
            with connection.cursor() as cursor:
                placeholders = ", ".join(["(%s, %s)"] * len(nodes))
                quote = connection.ops.quote_name
                level, index, table = quote("level"), quote("index"), quote(_TABLE)
                cursor.execute(
                    f"SELECT {level}, {index}, hash FROM {table} "  # noqa: S608 - own names
                    f"WHERE ({level}, {index}) IN ({placeholders})",
                    [value for node in nodes for value in node],
                )
                for level, index, value in cursor.fetchall():
                    self.known[level, index] = bytes.fromhex(value)

    def run(self, compute: Callable[[merkle.Subtree], _Result]) -> _Result:
        """compute(subtree) twice: once to learn what it reads, once with the stored hashes."""
        compute(self._recording)
        self.fetch(self.wanted - self.known.keys())
        return compute(self._stored)


def tree_root(size: int) -> bytes:
    return StoredTree().run(lambda subtree: merkle.root(size, subtree))


def tree_frontier(size: int) -> merkle.Frontier:
    tree = StoredTree()
    wanted = merkle.frontier_nodes(size)
    tree.fetch(wanted)
    return merkle.Frontier(size, [(level, tree._stored(level, index)) for level, index in wanted])


def tree_ensure(size: int) -> merkle.Frontier:
    """The right edge of the stored tree of `size` leaves, built from the rows first when it is
    missing (rows sealed before the tree existed, migration 0005, or loaded in bulk)."""
    try:
        return tree_frontier(size)
    except LookupError:
        return _tree_build(size)


def _tree_build(size: int) -> merkle.Frontier:
    frontier = merkle.Frontier()
    last = 0
    while last < size:
        chunk = cast(
            _SealedRows,
            list(
                AuditEvent.objects.filter(sequence__gt=last, sequence__lte=size)
                .order_by("sequence")
                .values_list("sequence", "hash")[: settings.AUDIT_CHUNK_SIZE]
            ),
        )
        if not chunk or chunk[0][0] != last + 1:
            raise LookupError(f"row {last + 1} is missing: the tree cannot be built from rows")
        finished: list[tuple[int, int, bytes]] = []
        for _, row_hash in chunk:
            finished.extend(frontier.append(merkle.leaf_hash(row_hash)))
        tree_nodes_store(finished)
        last = chunk[-1][0]
    return frontier


def tree_nodes_store(nodes: list[tuple[int, int, bytes]]) -> None:
    """Store finished subtrees; a rebuild after a crash may meet nodes stored already.

    PostgreSQL gets the whole batch in one statement, as two arrays and the hashes as one
    space-separated string: the sealer stores about one node per row it seals, building a
    model instance per node was a third of its time, and Django's client-side binding quotes
    a text[] element by element in Python, which one string avoids (bench/notes.md)."""
    if not nodes:
        return
    if connection.vendor == "postgresql":
        levels, indexes, hashes = zip(*nodes, strict=True)
        with connection.cursor() as cursor:
            cursor.execute(
                _PG_NODES_INSERT,
                [list(levels), list(indexes), " ".join(value.hex() for value in hashes)],
            )
        return
    AuditTreeNode.objects.bulk_create(
        [
            AuditTreeNode(level=level, index=index, hash=value.hex())
            for level, index, value in nodes
        ],
        ignore_conflicts=True,
    )


def inclusion_proof(sequence: int, size: int) -> dict[str, Any]:
    """The proof that row `sequence` is leaf sequence - 1 of the tree of `size` leaves."""
    tree = StoredTree()
    path = tree.run(lambda subtree: merkle.inclusion_path(sequence - 1, size, subtree))
    leaf = tree._stored(0, sequence - 1) if (0, sequence - 1) in tree.known else None
    if leaf is None:
        row_hash = AuditEvent.objects.values_list("hash", flat=True).get(sequence=sequence)
        leaf = merkle.leaf_hash(cast(str, row_hash))  # a sealed row (it has a sequence)
    return {
        "sequence": sequence,
        "leaf_index": sequence - 1,
        "tree_size": size,
        "leaf_hash": leaf.hex(),
        "path": [node.hex() for node in path],
        "root": tree_root(size).hex(),
    }


def inclusion_paths(sequences: list[int], size: int) -> list[list[bytes]]:
    """The inclusion paths of many rows in the tree of `size` leaves, reading every node they
    need in one round (neighbouring rows share most of them): an evidence pack of a million
    rows costs a few queries per thousand rows, not two per row."""
    return StoredTree().run(
        lambda subtree: [merkle.inclusion_path(seq - 1, size, subtree) for seq in sequences]
    )


def consistency_proof(first: int, second: int) -> dict[str, Any]:
    path = StoredTree().run(lambda subtree: merkle.consistency_path(first, second, subtree))
    return {
        "first": first,
        "second": second,
        "first_root": tree_root(first).hex(),
        "second_root": tree_root(second).hex(),
        "path": [node.hex() for node in path],
    }
