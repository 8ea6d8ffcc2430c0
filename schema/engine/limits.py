"""What a query may cost, and who may introspect: both act before any resolver runs.

Cost, checked when execution starts (the document is valid and the variables are known): every field
costs 1; a list field multiplies the cost of what is selected under it by its page size (`first`/`last`
from a literal or the request's variables, else the argument's default, else `DEFAULT_PAGE_SIZE`); a
connection's `edges` carry the connection's page size. Introspection fields cost nothing (graphql-core
already limits introspection depth). A breach is `QUERY_TOO_COMPLEX` (cost and maximum in extensions).

Introspection can be switched off for every role set without `admin`
(`DISABLE_INTROSPECTION_FOR_NON_ADMIN`): `__schema` and `__type` then fail validation; `__typename` stays.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from graphql.validation import NoSchemaIntrospectionCustomRule

from core.errors import AppError, ErrorCode
from core.lru import LRU
from core.settings import Settings
from schema.engine.sizes import COSTS_BYTES, node_weight

MAX_PAGE_SIZE = 100  # the connections' own maximum (resolvers/data/pagination.py)
PAGE_ARGUMENTS = ("first", "last")


def _is_list(type_: Any) -> bool:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def _named(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


class QueryCost:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, Any],
        default_page: int,
        variables: dict[str, Any] | None = None,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.default_page = default_page
        self.variables = variables or {}
        self.consulted: set[str] = set()  # the variables the cost depended on

    def page_size(self, field: FieldNode, definition: Any) -> int:
        for argument in field.arguments or ():
            if argument.name.value in PAGE_ARGUMENTS:
                if isinstance(argument.value, IntValueNode):
                    return max(0, min(int(argument.value.value), MAX_PAGE_SIZE))
                if isinstance(argument.value, VariableNode):
                    self.consulted.add(argument.value.name.value)
                    value = self.variables.get(argument.value.name.value)
                    if isinstance(value, int) and not isinstance(value, bool):
                        return max(0, min(value, MAX_PAGE_SIZE))
                    break  # not given: the argument's default applies
        for name in PAGE_ARGUMENTS:
            schema_argument = definition.args.get(name) if definition is not None else None
            if schema_argument is not None and isinstance(schema_argument.default_value, int):
                return min(schema_argument.default_value, MAX_PAGE_SIZE)
        return self.default_page

    def of(
        self,
        selection_set: SelectionSetNode | None,
        parent: Any,
        edges_page: int = 1,
        seen: frozenset[str] = frozenset(),
    ) -> int:
        if selection_set is None or parent is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name.startswith("__"):
                    continue
                fields = getattr(parent, "fields", None) or {}
                definition = fields.get(name)
                if definition is None:  # unknown fields are the validator's to report
                    continue
                named = _named(definition.type)
                multiplier, child_edges = 1, 1
                if parent.name.endswith("Connection") and name == "edges":
                    multiplier = edges_page
                elif getattr(named, "name", "").endswith("Connection"):
                    child_edges = self.page_size(selection, definition)
                elif _is_list(definition.type):
                    multiplier = self.page_size(selection, definition)
                total += multiplier * (1 + self.of(selection.selection_set, named, child_edges, seen))
            elif isinstance(selection, InlineFragmentNode):
                target = parent
                if selection.type_condition is not None:
                    target = self.schema.get_type(selection.type_condition.name.value) or parent
                total += self.of(selection.selection_set, target, edges_page, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue
                target = self.schema.get_type(fragment.type_condition.name.value) or parent
                total += self.of(fragment.selection_set, target, edges_page, seen | {name})
        return total


def _page_value(variables: dict[str, Any] | None, name: str) -> int | None:
    value = (variables or {}).get(name)
    return value if type(value) is int else None  # as QueryCost.page_size reads it


# A document's cost, kept per (schema, document, operation, the page-size variables it depends on): prepared
# documents are the same objects request after request. Entries hold the schema and document, so their ids
# stay theirs while cached.
_DEPENDS: LRU[tuple[Any, ...], tuple[GraphQLSchema, DocumentNode, tuple[str, ...]]] = LRU(
    1024, max_bytes=COSTS_BYTES, weigh=lambda _key, entry: node_weight(entry[1])
)
_COSTS: LRU[tuple[Any, ...], int] = LRU(4096)  # ints under keys of ids: small


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    default_page: int,
) -> int:
    base = (id(schema), id(document), operation_name, default_page)
    depends = _DEPENDS.get(base)
    if depends is not None and depends[0] is schema and depends[1] is document:
        key = (base, tuple(_page_value(variables, name) for name in depends[2]))
        cost = _COSTS.get(key)
        if cost is not None:
            return cost
    cost, consulted = _operation_cost(schema, document, operation_name, variables, default_page)
    names = tuple(sorted(consulted))
    _DEPENDS.put(base, (schema, document, names))
    _COSTS.put((base, tuple(_page_value(variables, name) for name in names)), cost)
    return cost


def _operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    default_page: int,
) -> tuple[int, set[str]]:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [op for op in operations if op.name is not None and op.name.value == operation_name]
    if len(operations) != 1:
        return 0, set()
    [operation] = operations
    root = schema.get_root_type(operation.operation)
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    counter = QueryCost(schema, fragments, default_page, variables)
    return counter.of(operation.selection_set, root), counter.consulted


def introspection_rules(settings: Settings, may_introspect: bool) -> tuple[Any, ...]:
    """The introspection ban for role sets without `capability:schema.introspect`, when it is switched on."""
    if settings.disable_introspection_for_non_admin and not may_introspect:
        return (NoSchemaIntrospectionCustomRule,)
    return ()


def check_cost(context: Any, settings: Settings) -> None:
    """The cost, once the document is valid and the variables (page sizes) are known: before any resolver.

    `context` is strawberry's execution context."""
    assert context.graphql_document is not None
    max_cost = settings.max_query_cost
    cost = operation_cost(
        context.schema._schema,
        context.graphql_document,
        context.operation_name,
        context.variables,
        settings.default_page_size,
    )
    if cost > max_cost:
        state = getattr(context.context, "state", None)
        if state is not None:
            state.executed = False  # refused before execution, like a validation rule
        raise AppError(
            ErrorCode.QUERY_TOO_COMPLEX,
            f"Query cost {cost} exceeds the maximum of {max_cost}",
            cost=cost,
            maxCost=max_cost,
        )
