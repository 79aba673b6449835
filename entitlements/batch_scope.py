"""The scope of a batch of billing events in entitlements: state_batch and grant_batch keep
what a batch reads and writes in a context variable for the length of the batch."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

Kept = TypeVar("Kept")


@contextmanager
def batch_scope(var: ContextVar[Kept | None], new: Callable[[], Kept]) -> Iterator[Kept | None]:
    """Open a batch in `var` for the block and yield it; inside a batch already open, yield
    None: the outer block writes what both kept."""
    if var.get() is not None:
        yield None
        return
    batch = new()
    token = var.set(batch)
    try:
        yield batch
    finally:
        var.reset(token)
