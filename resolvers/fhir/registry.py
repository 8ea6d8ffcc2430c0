"""The registry of resource mappers: the one place a domain adds the FHIR resources its records become.

A domain module registers a `ResourceKind` when it is imported (resolvers/fhir/__init__.py imports them all):
which FHIR resource types it emits, the field that must be visible in the caller's schema for it to apply at all
(the patient's list field of that record kind), how it loads the rows of a batch of patients through the
caller's scoped repository, and how one patient's rows become resources. The patient bundle and the bulk export
both walk this registry, so a new kind appears in both, under the same field decision, reach and audit.

Kinds run in `order`: a later kind sees which records earlier ones showed (Provenance comes last).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from resolvers.fhir.common import Built, Shared, View

if TYPE_CHECKING:
    from resolvers.data.context import Context

# rows of each patient of the batch (patient id -> rows), loaded through ctx.data
Load = Callable[["Context", Sequence[int], Shared], Awaitable[dict[int, list[Any]]]]
Build = Callable[[list[Any], View], list[Built]]


@dataclass(frozen=True)
class ResourceKind:
    name: str
    resource_types: tuple[str, ...]
    load: Load
    build: Build
    gate: tuple[str, str] | None = None  # (type, field) the caller's schema must show, e.g. ("Patient", "visits")
    order: int = 50
    # types whose resources several patients share (a physician's session): a bulk export writes each once
    shared: tuple[str, ...] = ()


KINDS: dict[str, ResourceKind] = {}


def register(kind: ResourceKind) -> ResourceKind:
    if kind.name in KINDS:
        raise ValueError(f"FHIR resource kind {kind.name} registered twice")
    KINDS[kind.name] = kind
    return kind


def kinds() -> list[ResourceKind]:
    return sorted(KINDS.values(), key=lambda kind: (kind.order, kind.name))


def resource_types() -> list[str]:
    """Every resource type some registered kind emits (what `_type` may name), Patient first."""
    found: dict[str, None] = {}
    for kind in kinds():
        found.update(dict.fromkeys(kind.resource_types))
    return list(found)


def shared_types() -> frozenset[str]:
    """The resource types several patients' resources may repeat: written once per export."""
    return frozenset(name for kind in kinds() for name in kind.shared)
