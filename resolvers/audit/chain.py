"""The tamper-evident audit trail: append-only triggers, the hash chain sealed in order, verification, retention.

One name to import from; the pieces live beside it:
- records.py: what is hashed (an event's canonical JSON record), the content hash and the link hash.
- triggers.py: the `event` and `event_seal` tables refuse UPDATE and DELETE in the database itself (triggers,
  created by migration 0007_audit_chain); `maintenance()` (the archive, the test reset) is the only way around.
- seal.py: `seal_pending` links unsealed events in id order, in short steps under a lock on the single
  `audit_seal_state` row (content hashed before the lock is taken).
- sealer.py: the app's background `Sealer`, which runs those steps in a process of its own (woken by writes and
  every AUDIT_SEAL_INTERVAL_SECONDS), so the server's event loop never waits for hashing.
- verify.py: `verify_chain` walks the chain from the archived cut and reports every broken link, first one first.
- archive.py: `archive_events` writes a sealed prefix of the chain to a JSON Lines file, checks the file, and only
  then removes those rows (through `maintenance()`), moving the cut; the archive itself is recorded as an event.
"""

from __future__ import annotations

from resolvers.audit.archive import ARCHIVE_FORMAT, ArchiveResult, archive_events, read_archive
from resolvers.audit.records import (
    CONTENT_FIELDS,
    AuditChainError,
    content_hash,
    event_record,
    link_hash,
)
from resolvers.audit.seal import GAP_GRACE, needs_sealing, seal_pending, unsealed_count
from resolvers.audit.sealer import Sealer
from resolvers.audit.triggers import (
    APPEND_ONLY_TABLES,
    create_trigger_statements,
    drop_trigger_statements,
    maintenance,
    restore_append_only,
    suspend_append_only,
)
from resolvers.audit.verify import ARCHIVE_ACTION, Problem, Verification, verify_chain

__all__ = [
    "APPEND_ONLY_TABLES",
    "ARCHIVE_ACTION",
    "ARCHIVE_FORMAT",
    "CONTENT_FIELDS",
    "GAP_GRACE",
    "ArchiveResult",
    "AuditChainError",
    "Problem",
    "Sealer",
    "Verification",
    "archive_events",
    "content_hash",
    "create_trigger_statements",
    "drop_trigger_statements",
    "event_record",
    "link_hash",
    "maintenance",
    "needs_sealing",
    "read_archive",
    "restore_append_only",
    "seal_pending",
    "suspend_append_only",
    "unsealed_count",
    "verify_chain",
]
