"""Walking a role's GraphQL schema generically: the ID slots of its operations, plausible values for the
other arguments, and one query per list field that harvests every id a role can see.

Nothing here names a domain type: a module added later is walked the same way.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
    get_named_type,
    is_list_type,
    is_non_null_type,
)

# How deep the harvest follows object fields (a connection costs two levels: edges, node).
HARVEST_DEPTH = 7
HARVEST_PAGE = 100


def id_kind(value: str) -> tuple[str, str] | None:
    """(type, key) of an opaque id (base64 of `Type:pk`, core/ids.py), or None for anything else."""
    try:
        raw = base64.urlsafe_b64decode((value + "=" * (-len(value) % 4)).encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        return None
    kind, sep, pk = raw.partition(":")
    return (kind, pk) if sep and kind and pk else None


# ---- ID slots ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """Where an operation takes an id: `path` from the argument down through input object fields."""

    root: str  # "query" or "mutation"
    operation: str
    path: tuple[str, ...]
    required: bool
    is_list: bool

    @property
    def name(self) -> str:
        return f"{self.operation}({'.'.join(self.path)})"


def _id_paths(
    input_type: GraphQLInputType, path: tuple[str, ...], required: bool, seen: frozenset[str]
) -> Iterator[tuple[tuple[str, ...], bool, bool]]:
    named = get_named_type(input_type)
    is_list = is_list_type(input_type.of_type if is_non_null_type(input_type) else input_type)  # type: ignore[union-attr]
    if isinstance(named, GraphQLScalarType) and named.name == "ID":
        yield path, required and is_non_null_type(input_type), is_list
    elif isinstance(named, GraphQLInputObjectType) and named.name not in seen:
        for name, input_field in named.fields.items():
            yield from _id_paths(
                input_field.type,
                (*path, name),
                required and is_non_null_type(input_type) and is_non_null_type(input_field.type),
                seen | {named.name},
            )


def id_slots(schema: GraphQLSchema) -> list[Slot]:
    """Every argument of type ID (and ID field of an input object) of every query and mutation."""
    slots = []
    for root, root_type in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        if root_type is None:
            continue
        for operation, graphql_field in root_type.fields.items():
            for arg_name, arg in graphql_field.args.items():
                for path, required, is_list in _id_paths(arg.type, (arg_name,), True, frozenset()):
                    slots.append(Slot(root, operation, path, required, is_list))
    return slots


def root_field(schema: GraphQLSchema, slot: Slot) -> GraphQLField:
    root_type = schema.query_type if slot.root == "query" else schema.mutation_type
    assert root_type is not None
    return root_type.fields[slot.operation]


def enum_arguments(graphql_field: GraphQLField) -> dict[str, list[str]]:
    """The field's top-level enum arguments and their values: an id's type may follow one (a record type)."""
    return {
        name: list(named.values)
        for name, arg in graphql_field.args.items()
        if isinstance(named := get_named_type(arg.type), GraphQLEnumType)
    }


# ---- plausible values -------------------------------------------------------------------------------


def plausible(graphql_type: GraphQLInputType, name: str, overrides: dict[str, Any], label: str) -> Any:
    """A value of the type that input validation should accept: required input fields filled, optional
    ones left out. Strings name the operation (`label`), so a write that should not have happened shows
    where it came from. `overrides` by argument or input field name win."""
    if name in overrides:
        return overrides[name]
    inner = graphql_type.of_type if isinstance(graphql_type, GraphQLNonNull) else graphql_type
    if isinstance(inner, GraphQLList):
        return [plausible(inner.of_type, name, overrides, label)]
    if isinstance(inner, GraphQLEnumType):
        return next(iter(inner.values))
    if isinstance(inner, GraphQLInputObjectType):
        return {
            key: plausible(input_field.type, key, overrides, label)
            for key, input_field in inner.fields.items()
            if (is_non_null_type(input_field.type) and input_field.default_value is Undefined) or key in overrides
        }
    scalar = getattr(inner, "name", "")
    today = datetime.datetime.now(datetime.UTC)
    return {
        "String": f"generic reach probe {label} {name}",
        "Int": 1,
        "Float": 1.0,
        "Boolean": True,
        "Date": today.date().isoformat(),
        "DateTime": today.isoformat(),
        "JSON": {},
        "ID": "",
    }.get(scalar, f"generic reach probe {label}")


def set_path(values: dict[str, Any], path: tuple[str, ...], value: Any, is_list: bool) -> None:
    """Put `value` at `path` (an argument, or a field of an input object), creating objects on the way."""
    target = values
    for key in path[:-1]:
        existing = target.get(key)
        if not isinstance(existing, dict):
            existing = target[key] = {}
        target = existing
    if value is None:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = [value] if is_list else value


def variables_document(graphql_field: GraphQLField, root: str, operation: str, selection: str) -> str:
    """`mutation ($a: T!, ...) { op(a: $a, ...) <selection> }` over every argument of the field; an argument
    with a default takes a nullable variable, so leaving the variable out leaves the default."""
    params = ", ".join(
        f"${name}: {arg.type.of_type if arg.default_value is not Undefined and is_non_null_type(arg.type) else arg.type}"  # type: ignore[union-attr]
        for name, arg in graphql_field.args.items()
    )
    args = ", ".join(f"{name}: ${name}" for name in graphql_field.args)
    head = f"{root} ({params})" if params else root
    call = f"{operation}({args})" if args else operation
    return f"{head} {{ {call} {selection} }}"


def minimal_selection(graphql_field: GraphQLField) -> str:
    """The smallest selection the field's type accepts: nothing for a scalar, `__typename` otherwise."""
    named = get_named_type(graphql_field.type)
    return "" if isinstance(named, GraphQLScalarType | GraphQLEnumType) else "{ __typename }"


# ---- harvest: every id a role sees ------------------------------------------------------------------


def _optional_only(graphql_field: GraphQLField) -> bool:
    return all(
        not is_non_null_type(arg.type) or arg.default_value is not Undefined for arg in graphql_field.args.values()
    )


def _args(graphql_field: GraphQLField) -> str:
    return f"(first: {HARVEST_PAGE})" if "first" in graphql_field.args else ""


def harvest_selection(graphql_type: Any, depth: int, path: frozenset[str], listed: set[str]) -> str | None:
    """Every ID field reachable without required arguments, to HARVEST_DEPTH, not revisiting a type.
    `listed` collects the object types whose own `id` the selection reads."""
    named = get_named_type(graphql_type)
    if isinstance(named, GraphQLUnionType):
        parts = [
            f"... on {member.name} {sub}"
            for member in named.types
            if (sub := harvest_selection(member, depth, path, listed))
        ]
        return "{ __typename " + " ".join(parts) + " }" if parts else None
    if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
        return None
    parts = []
    for name, graphql_field in named.fields.items():
        if not _optional_only(graphql_field):
            continue
        target = get_named_type(graphql_field.type)
        if isinstance(target, GraphQLScalarType) and target.name == "ID":
            parts.append(name)
            if name == "id":
                listed.add(named.name)
        elif isinstance(target, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType):
            if depth >= HARVEST_DEPTH or target.name in path:
                continue
            sub = harvest_selection(target, depth + 1, path | {target.name}, listed)
            if sub:
                parts.append(f"{name}{_args(graphql_field)} {sub}")
    return "{ " + " ".join(parts) + " }" if parts else None


def harvest_documents(schema: GraphQLSchema, listed: set[str]) -> dict[str, str]:
    """One query per Query field that takes no required argument and leads to ids; `listed` collects the
    object types whose ids they read."""
    assert schema.query_type is not None
    documents = {}
    for name, graphql_field in schema.query_type.fields.items():
        if not _optional_only(graphql_field):
            continue
        target = get_named_type(graphql_field.type)
        sub = harvest_selection(target, 1, frozenset({target.name}), listed)
        if sub:
            documents[name] = f"{{ {name}{_args(graphql_field)} {sub} }}"
    return documents


@dataclass
class Seen:
    """The ids found in answers. `visible`: every id anywhere (an object's own or a reference to another);
    `sightings`: for each object's own `id`, the ids beside it and above it, once per place it was found."""

    visible: dict[str, set[str]] = field(default_factory=dict)
    sightings: dict[str, list[frozenset[str]]] = field(default_factory=dict)

    def of(self, kind: str) -> set[str]:
        return self.visible.get(kind, set())

    def add(self, value: Any, above: frozenset[str] = frozenset()) -> None:
        if isinstance(value, list):
            for item in value:
                self.add(item, above)
        elif isinstance(value, dict):
            own = frozenset(v for v in value.values() if isinstance(v, str) and id_kind(v))
            for item in own:
                kind = id_kind(item)
                assert kind is not None
                self.visible.setdefault(kind[0], set()).add(item)
            own_id = value.get("id")
            if isinstance(own_id, str) and own_id in own:
                self.sightings.setdefault(own_id, []).append((own | above) - {own_id})
            for v in value.values():
                if isinstance(v, dict | list):
                    self.add(v, above | own)
