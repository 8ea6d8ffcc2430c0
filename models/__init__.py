"""Every table: importing this package imports each of its modules, so SQLModel.metadata (and so Alembic,
the ownership registry in policies/ and the tests) knows every table without a hand-kept list."""

from __future__ import annotations

import importlib
import pkgutil

MODULES = tuple(
    importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__) if not info.ispkg
)
