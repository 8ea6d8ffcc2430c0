"""Descriptions for every type, field, argument, input field and enum value of every role's schema.

A description written beside its field (`strawberry.field(description=...)`) comes first. What strawberry cannot
carry beside the code (enum values of the models' Python enums, arguments declared as plain parameters, the
generic connection types) is filled in here when each role's schema is built, from two sources:

* the domains' catalogue, registered by schema/root.py (`register`): schema coordinates (`Patient`,
  `Patient.phone`, `Query.patients(filter:)`, `Gender.MALE`, `PatientFilter.search`) -> text;
* rules for what every module shares, so a new module gets them without remembering: pagination arguments
  (`first`, `after`, `last`, `before`, stating the page-size limit and what it does to a query's cost), the
  connection and edge types, opaque ids, timestamps and versions, and the root types (stating the limits).

tests/test_schema_descriptions.py walks every role's schema and fails on anything left without a description,
and on a catalogue entry that names no coordinate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)

from resolvers.data.pagination import MAX_PAGE_SIZE

CATALOGUE: dict[str, str] = {}

LIMITS = (
    "Every operation is checked before it runs: by default at most depth 12, 30 aliases, 5,000 tokens, "
    "a document of 100,000 bytes and a cost of 200,000 (each field costs 1; a list field multiplies the cost of "
    f"what it selects by its page size, `first`, at most {MAX_PAGE_SIZE}); QUERY_TOO_COMPLEX otherwise."
)
ROOTS = {
    "Query": "What your role may read. " + LIMITS,
    "Mutation": "What your role may change; every change is recorded in the audit trail, all or nothing. " + LIMITS,
    "Subscription": (
        "What your role may follow live: over the websocket at /graphql (graphql-transport-ws, the token in "
        "connection_init), never over HTTP. " + LIMITS
    ),
}
PAGE_ARGUMENTS = {
    "first": (
        f"How many items to return from the start: 0 to {MAX_PAGE_SIZE} (BAD_USER_INPUT above). The query's cost "
        "multiplies what this list selects by this number."
    ),
    "after": "Return the items after this cursor (`pageInfo.endCursor` of the previous page); none: from the start.",
    "last": (
        f"How many items to return from the end: 0 to {MAX_PAGE_SIZE} (BAD_USER_INPUT above). The query's cost "
        "multiplies what this list selects by this number."
    ),
    "before": "Return the items before this cursor (`pageInfo.startCursor` of the next page).",
}
PAGE_INFO = {
    "hasNextPage": "Whether more items follow this page (ask for them with `after: endCursor`).",
    "hasPreviousPage": "Whether items come before this page.",
    "startCursor": "The cursor of this page's first item; null for an empty page.",
    "endCursor": "The cursor of this page's last item: pass it as `after` for the next page; null for an empty page.",
}


def register(entries: Mapping[str, str]) -> None:
    """Add a domain's descriptions (schema coordinate -> text); a coordinate described twice is a mistake."""
    twice = sorted(set(entries) & set(CATALOGUE))
    if twice:
        raise ValueError(f"described twice: {', '.join(twice)}")
    CATALOGUE.update(entries)


def words(name: str) -> str:
    """`attendingPhysician` -> `attending physician`."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r" \1", name).lower()


def _type_rule(name: str) -> str | None:
    if name in ROOTS:
        return ROOTS[name]
    if name == "PageInfo":
        return "Where a page sits in its list: the cursors at its ends and whether more items come before or after."
    if name.endswith("Connection"):
        return (
            f"A page of {words(name[: -len('Connection')])} items (keyset pagination: pass `pageInfo.endCursor` as "
            "`after` for the next page)."
        )
    if name.endswith("Edge"):
        return f"One {words(name[: -len('Edge')])} in a page, with its cursor."
    return None


def _field_rule(type_name: str, name: str, graphql_field: GraphQLField) -> str | None:
    target = get_named_type(graphql_field.type)
    if name == "voided" and target.name == "VoidInfo":
        return (
            f"Set when this {words(type_name)} was voided (entered in error): when, by whom and why; such records are "
            "shown only to roles that see voided records."
        )
    if type_name == "PageInfo":
        return PAGE_INFO.get(name)
    if type_name.endswith("Connection") and name == "edges":
        return "The items of this page, in order, each with its cursor."
    if type_name.endswith("Connection") and name == "pageInfo":
        return "Where this page sits: its cursors, and whether more items follow."
    if type_name.endswith("Edge") and name == "cursor":
        return "This item's position, opaque: pass it as `after` to continue after it."
    if type_name.endswith("Edge") and name == "node":
        return f"The {words(target.name)}."
    if name == "id" and target.name == "ID":
        return f"Opaque id of this {words(type_name)}: a string to send back as it is, never to parse."
    if name.endswith("Id") and target.name == "ID":
        return f"Opaque id of the {words(name[: -len('Id')])}; null when there is none."
    if name == "createdAt":
        return f"When this {words(type_name)} was created (UTC)."
    if name == "updatedAt":
        return f"When this {words(type_name)} last changed (UTC)."
    if name == "version":
        return "Optimistic-lock version: send it back with an update; a stale one is CONFLICT."
    return None


def _argument_rule(field_name: str, name: str, argument: GraphQLArgument, returns: GraphQLNamedType) -> str | None:
    if name in PAGE_ARGUMENTS:
        return PAGE_ARGUMENTS[name]
    if name == "id":
        if isinstance(returns, GraphQLObjectType):
            return f"Opaque id of the {words(returns.name)}; out of your reach or unknown is NOT_FOUND."
        return f"Opaque id of the record `{field_name}` acts on; out of your reach or unknown is NOT_FOUND."
    if name.endswith("Id") and get_named_type(argument.type).name == "ID":
        return f"Opaque id of the {words(name[: -len('Id')])}; out of your reach or unknown is NOT_FOUND."
    if name == "input":
        return f"The values, as {get_named_type(argument.type).name} describes each."
    if name == "filter":
        return f"Narrows the list; every condition given must hold ({get_named_type(argument.type).name})."
    return None


_INPUT_PREFIXES = ("Create", "Update", "Register", "Record")


def _input_rule(schema: GraphQLSchema, type_name: str, name: str) -> str | None:
    """An input field named as a field of the type it creates or changes takes that field's description."""
    base = type_name.removesuffix("Input")
    verb = next((prefix for prefix in _INPUT_PREFIXES if base.startswith(prefix) and base != prefix), "")
    target = schema.type_map.get(base[len(verb) :])
    source = target.fields.get(name) if isinstance(target, GraphQLObjectType) else None
    text = (source.description or CATALOGUE.get(f"{target.name}.{name}")) if source and target else None
    if not text:
        return None
    return f"{text} Left out: unchanged." if verb == "Update" else text


def describe(schema: GraphQLSchema) -> None:
    """Fill every missing description of a built schema from the catalogue, then the rules (input objects last:
    an input field may take the description of the field it sets)."""
    named = [(name, t) for name, t in schema.type_map.items() if not name.startswith("__")]
    for type_name, graphql_type in named:
        if not graphql_type.description:
            graphql_type.description = CATALOGUE.get(type_name) or _type_rule(type_name)
        if not graphql_type.description and isinstance(graphql_type, GraphQLEnumType):
            graphql_type.description = (
                f"The coded values of {words(type_name)}; their display labels (Chinese, English) come from the "
                "dictionaries."
            )
        if isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType):
            _describe_fields(type_name, graphql_type)
        elif isinstance(graphql_type, GraphQLEnumType):
            for value_name, value in graphql_type.values.items():
                if not value.description:
                    value.description = CATALOGUE.get(f"{type_name}.{value_name}")
    for type_name, graphql_type in named:
        if isinstance(graphql_type, GraphQLInputObjectType):
            for field_name, input_field in graphql_type.fields.items():
                if not input_field.description:
                    input_field.description = (
                        CATALOGUE.get(f"{type_name}.{field_name}")
                        or PAGE_ARGUMENTS.get(field_name)
                        or _input_rule(schema, type_name, field_name)
                    )


def _describe_fields(type_name: str, graphql_type: GraphQLObjectType | GraphQLInterfaceType) -> None:
    for field_name, graphql_field in graphql_type.fields.items():
        coordinate = f"{type_name}.{field_name}"
        if not graphql_field.description:
            graphql_field.description = CATALOGUE.get(coordinate) or _field_rule(type_name, field_name, graphql_field)
        returns = get_named_type(graphql_field.type)
        for name, argument in graphql_field.args.items():
            if not argument.description:
                argument.description = CATALOGUE.get(f"{coordinate}({name}:)") or _argument_rule(
                    field_name, name, argument, returns
                )
            elif name in ("first", "last") and str(MAX_PAGE_SIZE) not in argument.description:
                # the page-size limit and the cost are stated on every page size, whoever described it
                argument.description = f"{argument.description.rstrip()} {PAGE_ARGUMENTS[name]}"
