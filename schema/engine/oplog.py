"""Every root mutation field notes its call for the operation log: its name, its arguments as the client sent them
(after variables were applied), which argument paths cannot carry free text (IDs, enums, booleans, read off the
schema), and when it started and ended. The write unit's event (or the refusal's) takes them from the request state
(resolvers/audit/oplog.py keeps what is safe). Added to every field of the root Mutation, so a new mutation is in
the log without remembering.

The same extension runs the field again when its write unit lost to a concurrent write (Galera certification, a
deadlock): resolvers/audit/unit.py `retry_lost_races`, the one place that decides it.
"""

from __future__ import annotations

import time
from typing import Any

from graphql import (
    FieldNode,
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    ListValueNode,
    ObjectValueNode,
    Undefined,
    ValueNode,
    VariableNode,
)
from graphql.utilities import value_from_ast
from strawberry.extensions import FieldExtension

from core.lru import LRU
from resolvers.audit.oplog import MutationCall
from resolvers.audit.unit import retry_lost_races

_SAFE_SCALARS = {"ID", "Boolean"}
_PATHS: dict[tuple[str, str], frozenset[str]] = {}


def _unwrap(graphql_type: Any) -> Any:
    while isinstance(graphql_type, (GraphQLNonNull, GraphQLList)):
        graphql_type = graphql_type.of_type
    return graphql_type


def _typed_safe(arguments: dict[str, GraphQLArgument]) -> frozenset[str]:
    paths: set[str] = set()

    def walk(name: str, graphql_type: GraphQLInputType, depth: int) -> None:
        inner = _unwrap(graphql_type)
        if isinstance(inner, GraphQLEnumType) or getattr(inner, "name", None) in _SAFE_SCALARS:
            paths.add(name)
        elif isinstance(inner, GraphQLInputObjectType) and depth < 5:
            for field_name, input_field in inner.fields.items():
                walk(f"{name}.{field_name}", input_field.type, depth + 1)

    for name, argument in arguments.items():
        walk(name, argument.type, 0)
    return frozenset(paths)


# Literal arguments (no variable in them) of the documents in use, as values: the parsed documents are cached, so a
# literal is the same node from one request to the next and its value is read once. Keyed by the node's id, the
# node kept beside its value (an id is only reused once its node is gone, and then the node differs). Read only.
_LITERALS: LRU[int, tuple[ValueNode, Any]] = LRU(2048)


def _has_variable(node: Any) -> bool:
    if isinstance(node, VariableNode):
        return True
    if isinstance(node, ObjectValueNode):
        return any(_has_variable(field.value) for field in node.fields)
    if isinstance(node, ListValueNode):
        return any(_has_variable(item) for item in node.values)
    return False


def _value(value_node: ValueNode, definition: GraphQLArgument, variables: dict[str, Any]) -> Any:
    if isinstance(value_node, VariableNode):
        return value_from_ast(value_node, definition.type, variables)
    found = _LITERALS.get(id(value_node))
    if found is not None and found[0] is value_node:
        return found[1]
    value = value_from_ast(value_node, definition.type, variables)
    if not _has_variable(value_node):
        _LITERALS.put(id(value_node), (value_node, value))
    return value


def _arguments(field: GraphQLField, node: FieldNode, variables: dict[str, Any]) -> dict[str, Any]:
    """The field's arguments as the resolver gets them (variables applied, defaults filled), GraphQL names kept."""
    given = {argument.name.value: argument.value for argument in node.arguments or ()}
    values: dict[str, Any] = {}
    for name, definition in field.args.items():
        value_node = given.get(name)
        if value_node is None or (isinstance(value_node, VariableNode) and value_node.name.value not in variables):
            if definition.default_value is not Undefined:
                values[name] = definition.default_value
            continue
        value = _value(value_node, definition, variables)
        if value is not Undefined:
            values[name] = value
    return values


def _call(info: Any) -> MutationCall | None:
    raw = info._raw_info
    state = getattr(info.context, "state", None)
    if state is None:
        return None
    field = raw.parent_type.fields[raw.field_name]
    key = (raw.parent_type.name, raw.field_name)
    safe = _PATHS.get(key)
    if safe is None:
        safe = _PATHS[key] = _typed_safe(field.args)
    arguments = _arguments(field, raw.field_nodes[0], raw.variable_values or {})
    call = MutationCall(name=raw.field_name, arguments=arguments, typed_safe=safe, started=time.perf_counter())
    state.calls.append(call)
    return call


class NoteMutationCall(FieldExtension):
    """Notes the call in the request state around the resolver (and runs it again after a lost race)."""

    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        call = _call(info)
        try:
            return next_(source, info, **kwargs)
        finally:
            if call is not None:
                call.ended = time.perf_counter()

    async def resolve_async(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        call = _call(info)
        try:
            return await retry_lost_races(info.context, lambda: next_(source, info, **kwargs))
        finally:
            if call is not None:
                call.ended = time.perf_counter()


def note_mutation_calls(mutation: type) -> type:
    """Add the extension to every field of the root Mutation (once)."""
    for field in mutation.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        if not any(isinstance(extension, NoteMutationCall) for extension in field.extensions):
            field.extensions.append(NoteMutationCall())
    return mutation
