"""The red team's moves, shared by the tests of the exported checkpoints, bucket and witness:
a database superuser who also holds the application's signing key."""

from audit import chain, merkle, signing
from audit.models import AuditCheckpoint, AuditEvent


def rewrite_from(first: int, tamper) -> None:
    """The attack: edit row `first`, re-chain every later row, re-sign every checkpoint with
    the application's key, as a superuser with the triggers off."""
    rows = list(AuditEvent.objects.filter(sequence__isnull=False).order_by("sequence"))
    statements, prev_hash, new_hashes = [], chain.GENESIS_HASH, []
    for row in rows:
        if row.sequence == first:
            row.reason = "rewritten"
        if row.sequence >= first:
            values = tuple(getattr(row, name) for name in chain.CONTENT_FIELDS)
            row.prev_hash, row.hash = prev_hash, chain.link_hash(prev_hash, values)
            statements.append((
                "UPDATE audit_auditevent SET reason = %s, prev_hash = %s, hash = %s "
                "WHERE sequence = %s", [row.reason, row.prev_hash, row.hash, row.sequence],
            ))  # fmt: skip
        prev_hash = row.hash
        new_hashes.append(row.hash)
    for checkpoint in AuditCheckpoint.objects.all():
        size = checkpoint.sequence
        root = merkle.mth([merkle.leaf_hash(value) for value in new_hashes[:size]]).hex()
        statement = chain.checkpoint_statement(
            sequence=size, head_hash=new_hashes[size - 1], root=root,
            created_at=checkpoint.created_at,
        )  # fmt: skip
        statements.append((
            "UPDATE audit_auditcheckpoint SET hash = %s, root = %s, signature = %s WHERE id = %s",
            [new_hashes[size - 1], root, signing.sign(statement), checkpoint.pk],
        ))  # fmt: skip
    # The stored Merkle nodes go too: the application rebuilds them from the rewritten rows.
    statements.append(("DELETE FROM audit_audittreenode", []))
    tamper(*statements)
