"""What the audit chain hashes: an event as a record of JSON values, its content hash and its link.

One canonical JSON form (sorted keys, no spaces, UTF-8, no NaN) serves the content hash and the archive's lines,
so what the archive stores is what was hashed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.timeutil import as_utc
from models.audit import AuditSealState, Event, EventSeal

EVENT = Event.__table__  # type: ignore[attr-defined]
SEAL = EventSeal.__table__  # type: ignore[attr-defined]
STATE = AuditSealState.__table__  # type: ignore[attr-defined]

CONTENT_FIELDS = (
    "id",
    "occurred_at",
    "actor_id",
    "action",
    "operation",
    "entity_type",
    "entity_id",
    "patient_id",
    "request_id",
    "ip",
    "outcome",
    "detail",
)


class AuditChainError(RuntimeError):
    """The chain cannot be sealed or archived as asked (nothing was changed)."""


def instant(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# Columns added after the chain began (the operation log's, migration 0017): hashed when they hold something, so
# an event made before them keeps the hash it was sealed with.
LATER_FIELDS = ("is_mutation", "user_agent", "duration_ms", "variables")


def event_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an event that the content hash covers, as JSON values (also the archive's event object)."""
    record = {name: row[name] for name in CONTENT_FIELDS}
    record["occurred_at"] = instant(row["occurred_at"])
    for name in LATER_FIELDS:
        value = row.get(name)
        if value not in (None, "", False):
            record[name] = bool(value) if name == "is_mutation" else value
    return record


def content_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()


def link_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256((prev_hash + content).encode("ascii")).hexdigest()


def link_fault(content: str, prev_hash: str, chain_hash: str, expected_prev: str) -> str | None:
    """Why a seal does not follow the chain before it (None when it does): verify-audit and archive reading."""
    if prev_hash != expected_prev:
        return "does not follow the chain before it"
    if chain_hash != link_hash(prev_hash, content):
        return "chain_hash is not sha256(prev_hash + content_hash)"
    return None
