"""What the audit chain hashes: an event as a record of JSON values, its content hash and its link.

One canonical JSON form (sorted keys, no spaces, UTF-8, no NaN) serves the content hash and the archive's lines,
so what the archive stores is what was hashed. It is `json.dumps`'s (below); orjson writes the same bytes for every
value but floats (`1e-07` against `1e-7`) and integers beyond 64 bits (it refuses them), so a record without a
float is written by orjson (a quarter of the time) and any other by `json` itself: the hashes stay what they were.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson

from core.timeutil import as_utc
from models.audit import AuditSealGap, AuditSealState, Event, EventSeal

EVENT = Event.__table__  # type: ignore[attr-defined]
SEAL = EventSeal.__table__  # type: ignore[attr-defined]
STATE = AuditSealState.__table__  # type: ignore[attr-defined]
GAP = AuditSealGap.__table__  # type: ignore[attr-defined]

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


_CONTAINERS = (dict, list, tuple)


def _floatless(value: Mapping[str, Any] | list[Any] | tuple[Any, ...]) -> bool:
    """No float anywhere in a record (a dict) or JSON container."""
    items = value.values() if isinstance(value, Mapping) else value
    kinds = set(map(type, items))
    if float in kinds:
        return False
    if kinds.isdisjoint(_CONTAINERS):
        return True
    return all(_floatless(item) for item in items if type(item) in _CONTAINERS)


def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    """canonical_json(record) as UTF-8: byte for byte the same, by orjson when that is sure (no float)."""
    if type(record) is dict and _floatless(record):
        try:
            return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, a lone surrogate: json decides (and may refuse)
            pass
    return canonical_json(record).encode("utf-8")


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


def _json_column(value: Any) -> Any:
    """A JSON column's value as SQLAlchemy's JSON type reads it (json.loads of the stored text)."""
    if not isinstance(value, str | bytes):
        return value
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:  # NaN, lone surrogates: what json.loads takes
        return json.loads(value)
    if type(parsed) is float or (type(parsed) in _CONTAINERS and not _floatless(parsed)):
        return json.loads(value)  # orjson reads an integer beyond 64 bits as a float: json's reading decides
    return parsed


def _driver_instant(value: Any, process: Callable[[Any], Any] | None) -> str | None:
    """instant() of an `occurred_at` as the driver hands it over: SQLite's text (SQLAlchemy's storage format,
    naive UTC with microseconds: 'YYYY-MM-DD HH:MM:SS.ffffff') rewritten in place, a naive datetime (MariaDB's:
    UTC) written by isoformat (strftime's text for years from 1000 on); anything else through the column type's own
    result processing."""
    kind = type(value)
    if kind is str and len(value) == 26 and value[10] == " " and value[19] == "." and "1" <= value[0] <= "9":
        return f"{value[:10]}T{value[11:]}Z"
    if kind is datetime and value.tzinfo is None and value.year >= 1000:
        return value.isoformat("T", "microseconds") + "Z"
    if process is not None and not isinstance(value, datetime):
        value = process(value)
    return instant(value)


RECORD_FIELDS = CONTENT_FIELDS + LATER_FIELDS
_OCCURRED_AT, _DETAIL = CONTENT_FIELDS.index("occurred_at"), CONTENT_FIELDS.index("detail")
_NOTHING = (None, "", False)


def driver_record_maker(
    names: Sequence[str], occurred_at: Callable[[Any], Any] | None
) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """event_record_from_driver() for rows as the driver's value tuples, whose columns are `names` (every one of
    RECORD_FIELDS among them): the positions are looked up once, not per row (the sealer and verify-audit)."""
    pick = itemgetter(*(names.index(name) for name in RECORD_FIELDS))
    content = len(CONTENT_FIELDS)

    def make(row: Sequence[Any]) -> dict[str, Any]:
        values = pick(row)
        record = dict(zip(CONTENT_FIELDS, values, strict=False))  # the first len(CONTENT_FIELDS) values
        record["occurred_at"] = _driver_instant(values[_OCCURRED_AT], occurred_at)
        detail = values[_DETAIL]
        if type(detail) is str or type(detail) is bytes:
            record["detail"] = _json_column(detail)
        is_mutation, user_agent, duration_ms, variables = values[content:]
        if is_mutation not in _NOTHING:
            record["is_mutation"] = bool(is_mutation)
        if user_agent not in _NOTHING:
            record["user_agent"] = user_agent
        if duration_ms not in _NOTHING:
            record["duration_ms"] = duration_ms
        if variables is not None:
            variables = _json_column(variables)
            if variables not in _NOTHING:
                record["variables"] = variables
        return record

    return make


_MAPPING_RECORD = driver_record_maker(RECORD_FIELDS, None)


def event_record_from_driver(row: Mapping[str, Any], occurred_at: Callable[[Any], Any] | None) -> dict[str, Any]:
    """event_record() of a row as the driver returns it, without SQLAlchemy's result processing (`occurred_at`: the
    column type's result processor, for the values the fast path does not know)."""
    values = tuple(row[name] if name in CONTENT_FIELDS else row.get(name) for name in RECORD_FIELDS)
    if occurred_at is None:
        return _MAPPING_RECORD(values)
    return driver_record_maker(RECORD_FIELDS, occurred_at)(values)


def content_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


def link_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256((prev_hash + content).encode("ascii")).hexdigest()


def link_fault(content: str, prev_hash: str, chain_hash: str, expected_prev: str) -> str | None:
    """Why a seal does not follow the chain before it (None when it does): verify-audit and archive reading."""
    if prev_hash != expected_prev:
        return "does not follow the chain before it"
    if chain_hash != link_hash(prev_hash, content):
        return "chain_hash is not sha256(prev_hash + content_hash)"
    return None
