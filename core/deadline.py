"""A request's deadline may stop it only before it writes: the commit watch.

The HTTP layer gives each request a `CommitWatch` (a context variable, so every task the request starts shares it).
`Database.transaction()` marks it just before its COMMIT is sent. A request past its deadline is cancelled only
while its watch is unmarked: cancelled there, its transaction rolls back and nothing of it is kept, so the TIMEOUT
the client hears is true. Once a write has begun to commit, the request runs on to its answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class CommitWatch:
    committing: bool = False


_WATCH: ContextVar[CommitWatch | None] = ContextVar("followup_commit_watch", default=None)


@contextmanager
def watching(watch: CommitWatch) -> Iterator[None]:
    """Tasks created inside this block (the request's own) report their commits to `watch`."""
    token = _WATCH.set(watch)
    try:
        yield
    finally:
        _WATCH.reset(token)


def committing() -> None:
    """A transaction is about to commit: the request it serves must not be cancelled from now on."""
    watch = _WATCH.get()
    if watch is not None:
        watch.committing = True
