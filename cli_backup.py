"""`server.py backup` and `server.py restore` (the operator's command line, beside cli.py; the work is in
resolvers/data/backup.py)."""

from __future__ import annotations

import time
from pathlib import Path

from core.settings import Settings


def cmd_backup(settings: Settings, out: str) -> None:
    from resolvers.data.backup import BackupError, backup

    started = time.monotonic()
    try:
        outcome = backup(settings.database_url, Path(out))
    except BackupError as error:
        raise SystemExit(f"backup refused: {error}") from None
    print(
        f"backup of the {outcome.kind} database (revision {outcome.revision}) written to {outcome.folder} in "
        f"{time.monotonic() - started:.1f} s: {outcome.data_bytes:,} bytes, sha256 {outcome.sha256}"
    )


def cmd_restore(settings: Settings, source: str) -> None:
    from resolvers.data.backup import BackupError, restore, table_counts

    started = time.monotonic()
    try:
        outcome = restore(settings.database_url, Path(source))
    except BackupError as error:
        raise SystemExit(f"restore refused: {error}") from None
    counts = table_counts(settings.database_url)
    print(
        f"restored {outcome.folder} (checksums ok, revision {outcome.revision}) in {time.monotonic() - started:.1f} s: "
        f"{len(counts)} tables, {sum(counts.values()):,} rows; now run `server.py verify-audit`"
    )
