"""What the complete schema says about itself, for the administration data: its enums (the dictionaries), every
grantable permission grouped by domain (the permission catalogue), and whether a role's schema holds a
coordinate (menus follow the same policy as the schema).

Read off the schema, never listed by hand: a new enum or field is in the dictionaries and the catalogue the day it
is added. The domain of a coordinate is the `schema/<domain>` module that declares the field (or its type).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import GraphQLEnumType, GraphQLObjectType

from policies.capabilities import COORDINATES as CAPABILITY_COORDINATES
from policies.capabilities import DESCRIPTIONS, DOMAINS, Capability, is_capability
from policies.decision import ROOT_OPERATIONS, is_structural
from policies.masking import MASKS

ROOT_TYPES = ("Query", "Mutation", "Subscription")
PLATFORM = "platform"


@dataclass(frozen=True)
class Enum:
    name: str
    values: tuple[str, ...]
    description: str | None


_ENUMS: weakref.WeakKeyDictionary[strawberry.Schema, dict[str, Enum]] = weakref.WeakKeyDictionary()


def schema_enums(schema: strawberry.Schema) -> dict[str, Enum]:
    """The enums of a schema (a role's: what it may see; the complete one: every dictionary). A built schema never
    changes (a policy change builds a new one), so each schema's walk is done once and kept while it lives."""
    found = _ENUMS.get(schema)
    if found is None:
        found = {}
        for name, graphql_type in schema._schema.type_map.items():
            if isinstance(graphql_type, GraphQLEnumType) and not name.startswith("__"):
                found[name] = Enum(name, tuple(graphql_type.values), graphql_type.description)
        _ENUMS[schema] = found
    return dict(found)


def holds(schema: strawberry.Schema, coordinate: str) -> bool:
    """Whether a role's schema holds a coordinate (`Type.field`, or `Type.*`: the type is there at all)."""
    type_name, _, field = coordinate.partition(".")
    graphql_type = schema._schema.type_map.get(type_name)
    if not isinstance(graphql_type, GraphQLObjectType):
        return False
    return field == "*" or field in graphql_type.fields


# ---- the permission catalogue ----------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogEntry:
    object: str
    actions: tuple[str, ...]
    description: str
    domain: str


def _domain(origin: Any) -> str:
    module = getattr(origin, "__module__", "") or ""
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "schema" and parts[1] not in ("engine", "root"):
        return parts[1]
    return PLATFORM


def _actions(type_name: str, coordinate: str) -> tuple[str, ...]:
    if type_name in ROOT_OPERATIONS:
        return ("execute",)
    return ("read", "read_masked") if coordinate in MASKS else ("read",)


_CATALOGUES: dict[int, tuple[CatalogEntry, ...]] = {}


def permission_catalog(full: strawberry.Schema) -> tuple[CatalogEntry, ...]:
    """Every coordinate and capability a permission line may name, with its actions, domain and description
    (made once per complete schema)."""
    found = _CATALOGUES.get(id(full))
    if found is None:
        found = _CATALOGUES[id(full)] = tuple(_entries(full))
    return found


def _entries(full: strawberry.Schema) -> Iterable[CatalogEntry]:
    names = full.config.name_converter
    for type_name, converted in sorted(full.schema_converter.type_map.items()):
        definition = getattr(converted, "definition", None)
        fields = getattr(definition, "fields", None)
        if definition is None or fields is None or getattr(definition, "is_input", False):
            continue
        graphql_type = full._schema.type_map.get(type_name)
        if not isinstance(graphql_type, GraphQLObjectType) or is_structural(type_name):
            continue
        type_domain = PLATFORM if type_name in ROOT_TYPES else _domain(definition.origin)
        type_text = definition.description or graphql_type.description or ""
        whole = f"Every field of {type_name}" + (f": {type_text}" if type_text else "")
        yield CatalogEntry(
            f"{type_name}.*", ("execute",) if type_name in ROOT_OPERATIONS else ("read",), whole, type_domain
        )
        for field in fields:
            field_name = names.get_graphql_name(field)
            if field_name not in graphql_type.fields:
                continue
            coordinate = f"{type_name}.{field_name}"
            domain = _domain(getattr(field, "origin", None)) if type_name in ROOT_TYPES else type_domain
            verb = "Run" if type_name in ROOT_OPERATIONS else "Read"
            text = field.description or graphql_type.fields[field_name].description
            description = text or f"{verb} {coordinate}"
            yield CatalogEntry(coordinate, _actions(type_name, coordinate), description, domain)
    for capability in Capability:
        assert capability.coordinate in CAPABILITY_COORDINATES and is_capability(capability.coordinate)
        yield CatalogEntry(capability.coordinate, ("execute",), DESCRIPTIONS[capability], DOMAINS[capability])
