"""Compiled input conversion (schema/engine/inputs.py): every input type of the admin's schema builds the same Python
object through its compiled `from_input` as through strawberry's own conversion, for a value with every field given
(nested inputs and lists of them included) and for one with only the required fields (the others defaulted); and a
mutation with an input object still stores what it was given, through the API."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
)
from sqlalchemy import select
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryObjectDefinition

from core.db import Database
from models.clinical import FollowUp
from tests.conftest import GraphQLClient
from tests.test_clinical_followups import scheduled_follow_ups
from tests.test_clinical_visits import events, one, patient_pks, pk_of

ADMIN = frozenset({"authenticated", "admin"})
SAMPLES: dict[str, Any] = {"String": "文本 text", "Int": 7, "Float": 1.5, "Boolean": True, "ID": "UGF0aWVudDox"}


def _sample(graphql_type: GraphQLInputType, full: bool, depth: int) -> Any:
    """A value as graphql-core hands it to strawberry (coerced: enum members, parsed scalars, dicts for inputs)."""
    if isinstance(graphql_type, GraphQLNonNull):
        return _sample(graphql_type.of_type, full, depth)
    if isinstance(graphql_type, GraphQLList):
        return [_sample(graphql_type.of_type, full, depth), _sample(graphql_type.of_type, full, depth)]
    if isinstance(graphql_type, GraphQLEnumType):
        return next(iter(graphql_type.values.values())).value
    if isinstance(graphql_type, GraphQLInputObjectType):
        return _object(graphql_type, full, depth + 1)
    assert isinstance(graphql_type, GraphQLScalarType)
    return SAMPLES.get(graphql_type.name, f"{graphql_type.name} value")  # passed through as it is, either way


def _object(graphql_type: GraphQLInputObjectType, full: bool, depth: int) -> dict[str, Any]:
    value = {}
    for name, field in graphql_type.fields.items():
        required = isinstance(field.type, GraphQLNonNull) and field.default_value is None
        if (full and depth < 4) or required:
            value[name] = _sample(field.type, full, depth)
    return value


def _inputs(client: GraphQLClient) -> list[tuple[type, StrawberryObjectDefinition, GraphQLInputObjectType]]:
    schema = client.services.registry.for_roles(ADMIN)
    found = []
    for concrete in schema.schema_converter.type_map.values():
        definition = concrete.definition
        if isinstance(definition, StrawberryObjectDefinition) and definition.is_input:
            implementation = concrete.implementation
            assert isinstance(implementation, GraphQLInputObjectType)
            found.append((definition.origin, definition, implementation))
    return found


async def test_every_input_type_builds_the_same_object_compiled_as_generic(client: GraphQLClient) -> None:
    if not client.services.settings.compiled_completion:
        pytest.skip("the speed-ups are off (TEST_SPEEDUPS=off): strawberry's own path is the only one, tested by all")
    schema = client.services.registry.for_roles(ADMIN)
    converter = schema.schema_converter
    inputs = _inputs(client)
    assert len(inputs) >= 20, [i[2].name for i in inputs]
    compiled = 0
    for cls, definition, graphql_type in inputs:
        own = definition.from_input
        if own is None or not getattr(own, "compiled", False):
            continue
        compiled += 1
        for full in (True, False):
            value = _object(graphql_type, full, 0)
            fast = convert_argument(value, cls, converter.scalar_registry, converter.config)
            definition.from_input = None  # strawberry's generic conversion, for the same value
            try:
                generic = convert_argument(value, cls, converter.scalar_registry, converter.config)
            finally:
                definition.from_input = own
            assert type(fast) is type(generic) is cls
            assert vars(fast) == vars(generic), (graphql_type.name, full)
    assert compiled == len(inputs)  # no input type of ours keeps strawberry's path (none has a Maybe field)


OUTCOME = """mutation ($id: ID!) { recordFollowUpOutcome(followUpId: $id, input: {outcomeText: "便血减少 less bleeding",
  painScore: 3, bleeding: true, satisfaction: 4}) { id status outcomeText painScore bleeding wexnerScore satisfaction } }"""
OTHER = OUTCOME.replace("painScore: 3, bleeding: true", "painScore: 0, bleeding: false").replace("便血减少 ", "")


async def test_a_literal_input_object_reaches_the_record_whole(client: GraphQLClient, db: Database) -> None:
    """The same literal document twice (its input value read once for the operation log, then from the cache) and
    another one: each record gets what its own document says, the fields left out None."""
    pks = await patient_pks(db)
    first, second, third = await scheduled_follow_ups(client, db, pks[2])
    expected = {
        "status": "COMPLETED",
        "outcomeText": "便血减少 less bleeding",
        "painScore": 3,
        "bleeding": True,
        "wexnerScore": None,
        "satisfaction": 4,
    }
    for follow_up, document, changes in (
        (first, OUTCOME, {}),
        (second, OUTCOME, {}),
        (third, OTHER, {"outcomeText": "less bleeding", "painScore": 0, "bleeding": False}),
    ):
        done = (await client.data(document, {"id": follow_up}, as_="physician"))["recordFollowUpOutcome"]
        assert done == {"id": follow_up, **expected, **changes}
        row = await one(db, select(FollowUp).where(FollowUp.id == pk_of("FollowUp", follow_up)))
        assert (row.outcome_text, row.pain_score, row.bleeding, row.wexner_score) == (
            done["outcomeText"],
            done["painScore"],
            done["bleeding"],
            None,
        )
    logged = [e.variables for e in await events(db, "recordFollowUpOutcome", "success")]
    assert [v["input"]["bleeding"] for v in logged if v] == [True, True, False]  # each call's own arguments
