"""Switches for the speed-ups that change how an answer is computed, never what it is.

Each can be turned off by a setting (COMPILED_COMPLETION, PROJECTION, PREFETCH, STATEMENT_REUSE); the test
suite runs once with all of them off (TEST_SPEEDUPS=off) and gives the same answers. Process-wide: set from the
settings when an app is created.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Speedups:
    projection: bool = True  # load only the columns a selection shows (schema/engine/projection.py)
    prefetch: bool = True  # a list's nested records loaded up front (schema/engine/prefetch.py)
    statement_reuse: bool = True  # hot statements built once and kept (resolvers/data/statements.py)


SPEEDUPS = Speedups()


def configure(*, projection: bool, prefetch: bool, statement_reuse: bool) -> None:
    SPEEDUPS.projection = projection
    SPEEDUPS.prefetch = prefetch
    SPEEDUPS.statement_reuse = statement_reuse
