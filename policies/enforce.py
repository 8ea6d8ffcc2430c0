"""Statements carry a mark saying they started from a table's reach (or, for system work, that they reach
every row on purpose). The repository and write units run only marked statements, so a statement built
around the repository fails when run instead of reading past the caller's reach."""

from __future__ import annotations

from typing import Any, TypeVar

S = TypeVar("S")

MARK = "followup_reach"


class Unscoped(RuntimeError):
    """A statement that did not start from the repository was about to run."""


def mark(statement: S, reach: str) -> S:
    """`reach`: the purpose whose reach clause the statement carries, or "unscoped" for system work."""
    return statement.execution_options(**{MARK: reach})  # type: ignore[attr-defined, no-any-return]


def check(statement: Any) -> Any:
    if not statement.get_execution_options().get(MARK):
        raise Unscoped("statements run through ctx.data start from ctx.data.select/update (its reach applied)")
    return statement
