"""Every type, field, argument, input field and enum value of every role's schema has a description, and the limits
are stated where they apply (the page size on every `first`, depth and cost on the root types)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
)

from resolvers.data.pagination import MAX_PAGE_SIZE
from schema.engine.builder import full_schema
from schema.engine.descriptions import CATALOGUE
from schema.engine.sdl import ROLE_SETS
from schema.root import Mutation, Query, Subscription


def described(schema: GraphQLSchema) -> Iterator[tuple[str, str | None]]:
    """(schema coordinate, description) of everything a client can see in the schema."""
    for type_name, graphql_type in schema.type_map.items():
        if type_name.startswith("__"):
            continue
        yield type_name, graphql_type.description
        if isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, graphql_field in graphql_type.fields.items():
                yield f"{type_name}.{field_name}", graphql_field.description
                for arg_name, argument in graphql_field.args.items():
                    yield f"{type_name}.{field_name}({arg_name}:)", argument.description
        elif isinstance(graphql_type, GraphQLInputObjectType):
            for field_name, input_field in graphql_type.fields.items():
                yield f"{type_name}.{field_name}", input_field.description
        elif isinstance(graphql_type, GraphQLEnumType):
            for value_name, value in graphql_type.values.items():
                yield f"{type_name}.{value_name}", value.description


def test_every_role_schema_is_fully_described(app: Any) -> None:
    services = app.state.services
    missing: dict[str, list[str]] = {}
    counted = 0
    for name, roles in ROLE_SETS.items():
        for schema in (services.registry.for_roles(roles), services.socket_schemas.for_roles(roles)):
            items = list(described(schema._schema))
            counted += len(items)
            absent = [coordinate for coordinate, text in items if not (text or "").strip()]
            if absent:
                missing[name] = absent
    assert missing == {}, f"add descriptions (beside the field, or in schema/descriptions/): {missing}"
    assert counted > 3000


def test_limits_are_stated_where_they_apply() -> None:
    schema = full_schema(Query, Mutation, Subscription)._schema
    pages = [
        (coordinate, text) for coordinate, text in described(schema) if coordinate.endswith(("(first:)", "(last:)"))
    ]
    assert len(pages) > 20
    assert all(str(MAX_PAGE_SIZE) in (text or "") and "cost" in (text or "") for _, text in pages), pages
    for root in ("Query", "Mutation", "Subscription"):
        text = schema.type_map[root].description or ""
        assert "depth 12" in text and "cost of 200,000" in text and "QUERY_TOO_COMPLEX" in text, root
    subscription = schema.type_map["Subscription"].description or ""
    assert "websocket" in subscription and "graphql-transport-ws" in subscription


def test_every_catalogue_entry_names_a_coordinate() -> None:
    coordinates = {coordinate for coordinate, _ in described(full_schema(Query, Mutation, Subscription)._schema)}
    stale = sorted(set(CATALOGUE) - coordinates)
    assert stale == [], f"schema/descriptions/ describes what the schema does not have: {stale}"
