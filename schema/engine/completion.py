"""Compiled completion: an object's selection turned, once per document, into a plain Python walk.

graphql-core completes every field of every object through the same generic path: a `Path`, a
`GraphQLResolveInfo`, strawberry's resolver wrapper, an awaitable check and a type dispatch per value.
A page of 20 patients with their visits and diagnoses is ~800 such steps, and they were most of our
CPU per request (bench/results/extra.md). Here, the first time an object type is completed for a set
of field nodes (which come from the cached parsed document, so they are the same objects from one
request to the next), the selection is compiled into a tree of small closures: attribute reads for
strawberry's basic fields, strawberry's own resolver wrapper for fields with a synchronous resolver (so
masking and history look-ups run exactly as before, with a real `Info`), and each field type's own
`coerce_output_value` for leaves. The values and the JSON are the same; only the walk is cheaper.

What is not compiled goes the generic way, unchanged: a selection with a directive (`@include`/`@skip`
depend on variables), `@defer`/`@stream`, arguments below the root, async resolvers (loaders), abstract
types, or a schema extension that hooks `resolve`. A compiled walk that meets anything unexpected at run
time (a null in a non-null field, a resolver that raises or returns an awaitable, an object of the wrong
type) gives up and completes that object again the generic way, which then reports the error exactly as
the specification says; the compiled fields are synchronous and read only what is already loaded, so
running them twice changes nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
)
from graphql.execution.collect_fields import collect_subfields
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from core.lru import LRU
from schema.engine.sizes import PLANS_BYTES, node_weight

Complete = Callable[[Any, "_Run"], Any]


class GiveUp(Exception):
    """The compiled walk met something only the generic completion handles correctly."""


class _Run:
    """Per request: the `Info` of each compiled resolver field, built on first use."""

    __slots__ = ("executor", "infos")

    def __init__(self, executor: CompilingExecutor) -> None:
        self.executor = executor
        self.infos: dict[int, Any] = {}


def _settled(value: Any) -> Any:
    if inspect.isawaitable(value):
        close = getattr(value, "close", None)
        if close is not None:
            close()
        raise GiveUp("awaitable")
    return value


class _ResolverField:
    """A field with a synchronous resolver, given a real Info.

    A resolver that takes `self` and `info` only is called as strawberry's `get_arguments` would call it
    (the source as `self`, strawberry's Info by the parameter's name), one Info per field and request;
    any other goes through strawberry's whole wrapper."""

    __slots__ = ("field_def", "info_class", "info_name", "method", "nodes", "parent_type", "response_name")

    def __init__(
        self,
        field_def: Any,
        nodes: list[FieldNode],
        parent_type: GraphQLObjectType,
        name: str,
        direct: _Direct | None,
    ) -> None:
        self.field_def = field_def
        self.nodes = nodes
        self.parent_type = parent_type
        self.response_name = name
        self.method: Any = None
        self.info_name = ""
        if direct is not None and direct.info_name is not None:
            self.method, self.info_name, self.info_class = direct.method, direct.info_name, direct.info_class

    def _info(self, run: _Run) -> Any:
        info = run.infos.get(id(self))
        if info is None:
            # Resolvers here read the context, the schema and the selection, never the path.
            path = Path(None, self.response_name, self.parent_type.name)
            info = run.executor.build_resolve_info(self.field_def, self.nodes, self.parent_type, path)
            if self.method is not None:
                info = self.info_class(_raw_info=info, _field=self.field_def.extensions["strawberry-definition"])
            run.infos[id(self)] = info
        return info

    def __call__(self, source: Any, run: _Run) -> Any:
        if self.method is not None:
            return _settled(self.method(source, **{self.info_name: self._info(run)}))
        return _settled(self.field_def.resolve(source, self._info(run)))


@dataclass(frozen=True)
class _Direct:
    """A resolver that compiled completion may call itself: the source as `self`, strawberry's Info by its
    parameter's name if it takes one (`info_name`), nothing else (what strawberry's `get_arguments` passes)."""

    method: Any
    info_name: str | None
    info_class: Any


def _direct_call(resolver: Any, executor: Any) -> _Direct | None:
    """How to call `resolver` without strawberry's wrapper, or None: it takes arguments, root or parent, or
    the schema has exception handlers (which the wrapper applies)."""
    strawberry_schema = getattr(executor.schema, "_strawberry_schema", None)
    converter = getattr(strawberry_schema, "schema_converter", None)
    if converter is None or getattr(converter, "_exception_handler_specs", None):
        return None
    if resolver.arguments or resolver.self_parameter is None:
        return None
    if resolver.root_parameter is not None or resolver.parent_parameter is not None:
        return None
    if not callable(resolver.wrapped_func):
        return None
    info = resolver.info_parameter
    return _Direct(resolver.wrapped_func, None if info is None else info.name, strawberry_schema.config.info_class)


def _self_only(method: Any) -> Complete:
    def call(source: Any, _run: _Run) -> Any:
        return _settled(method(source))

    return call


def _has_directives(selection_set: SelectionSetNode | None, fragments: dict[str, Any], seen: set[str]) -> bool:
    if selection_set is None:
        return False
    for selection in selection_set.selections:
        if selection.directives:
            return True
        if isinstance(selection, FieldNode):
            if _has_directives(selection.selection_set, fragments, seen):
                return True
        elif isinstance(selection, InlineFragmentNode):
            if _has_directives(selection.selection_set, fragments, seen):
                return True
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen:
                continue
            seen.add(name)
            details = fragments.get(name)
            definition = getattr(details, "definition", details)
            if definition is None or definition.directives or getattr(definition, "variable_definitions", None):
                return True
            if _has_directives(definition.selection_set, fragments, seen):
                return True
    return False


class Compiler:
    """The compiled completions of one schema, keyed by object type and field nodes (bounded)."""

    def __init__(self, size: int = 512) -> None:
        # objects completed by a compiled walk, and walks that gave up for the generic completion
        self.walks = 0
        self.fallbacks = 0
        # the field nodes are kept with their plan, so that their ids cannot be reused while it is cached
        self._plans: LRU[tuple[Any, ...], tuple[list[FieldNode], Complete | None]] = LRU(
            size, max_bytes=PLANS_BYTES, weigh=lambda _key, entry: node_weight(entry[0][0]) if entry[0] else 0
        )

    def plan(self, executor: CompilingExecutor, return_type: GraphQLObjectType, details: Any) -> Complete | None:
        key = (return_type.name, *(id(d.node) for d in details))
        entry = self._plans.get(key)
        if entry is not None:
            return entry[1]
        try:
            complete = self._object(executor, return_type, details, depth=0)
        except GiveUp:
            complete = None
        self._plans.put(key, ([d.node for d in details], complete))
        return complete

    # ---- compiling ------------------------------------------------------------------------------

    def _object(
        self, executor: CompilingExecutor, object_type: GraphQLObjectType, details: Any, depth: int
    ) -> Complete:
        if depth > 32:
            raise GiveUp("deep")
        for d in details:
            if d.defer_usage is not None or d.fragment_variable_values is not None:
                raise GiveUp("defer or fragment variables")
            if _has_directives(d.node.selection_set, executor.fragments, set()):
                raise GiveUp("directives")
        collected = collect_subfields(
            executor.schema,
            executor.fragments,
            executor.variable_values,
            executor.operation,
            object_type,
            details,
            executor.hide_suggestions,
        )
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            raise GiveUp("defer")
        fields: list[tuple[str, Complete]] = []
        for response_name, field_details in collected.grouped_field_set.items():
            fields.append((response_name, self._field(executor, object_type, field_details, depth)))
        is_type_of = object_type.is_type_of

        def complete(source: Any, run: _Run) -> dict[str, Any]:
            if is_type_of is not None and not is_type_of(source, None):
                raise GiveUp("type")
            return {name: field(source, run) for name, field in fields}

        return complete

    def _field(self, executor: CompilingExecutor, parent: GraphQLObjectType, details: Any, depth: int) -> Complete:
        node: FieldNode = details[0].node
        name = node.name.value
        if name == "__typename":
            type_name = parent.name
            return lambda _source, _run: type_name
        field_def = executor.schema.get_field(parent, name)
        if field_def is None or field_def.args or node.arguments:
            raise GiveUp("arguments")
        field = field_def.extensions.get("strawberry-definition")
        if field is None:
            raise GiveUp("not a strawberry field")
        if field.is_basic_field and field.default_resolver is getattr:
            attribute = field.python_name
            leaf = _basic_leaf(attribute, field_def.type)
            if leaf is not None:
                return leaf

            def read(source: Any, _run: _Run) -> Any:
                return getattr(source, attribute)

            read_value: Complete = read
        elif field.base_resolver is not None and not field.is_async and not field.extensions:
            direct = _direct_call(field.base_resolver, executor)
            if direct is not None and direct.info_name is None:
                read_value = _self_only(direct.method)
            else:
                response_name = node.alias.value if node.alias else name
                read_value = _ResolverField(field_def, [d.node for d in details], parent, response_name, direct)
        else:
            raise GiveUp("async or extended field")
        complete_value = self._type(executor, field_def.type, details, depth)

        def field_value(source: Any, run: _Run) -> Any:
            return complete_value(read_value(source, run), run)

        return field_value

    def _type(self, executor: CompilingExecutor, graphql_type: Any, details: Any, depth: int) -> Complete:
        if isinstance(graphql_type, GraphQLNonNull):
            inner = self._type(executor, graphql_type.of_type, details, depth)

            def non_null(value: Any, run: _Run) -> Any:
                if value is None:
                    raise GiveUp("null in a non-null field")
                return inner(value, run)

            return non_null
        if isinstance(graphql_type, GraphQLList):
            item = self._type(executor, graphql_type.of_type, details, depth)

            def list_value(value: Any, run: _Run) -> Any:
                if value is None:
                    return None
                if not isinstance(value, list | tuple):
                    raise GiveUp("not a list")
                return [item(v, run) for v in value]

            return list_value
        if isinstance(graphql_type, GraphQLScalarType | GraphQLEnumType):
            coerce = graphql_type.coerce_output_value

            def leaf(value: Any, _run: _Run) -> Any:
                if value is None:
                    return None
                coerced = coerce(value)
                if coerced is None or coerced is Undefined:
                    raise GiveUp("leaf")
                return coerced

            return leaf
        if isinstance(graphql_type, GraphQLObjectType):
            complete_object = self._object(executor, graphql_type, details, depth + 1)

            def object_value(value: Any, run: _Run) -> Any:
                return None if value is None else complete_object(value, run)

            return object_value
        raise GiveUp("abstract type")


def _basic_leaf(attribute: str, graphql_type: Any) -> Complete | None:
    """An attribute holding a scalar or enum (the commonest field) in one step instead of three."""
    required = isinstance(graphql_type, GraphQLNonNull)
    leaf_type = graphql_type.of_type if required else graphql_type
    if not isinstance(leaf_type, GraphQLScalarType | GraphQLEnumType):
        return None
    coerce = leaf_type.coerce_output_value

    def basic_leaf(source: Any, _run: _Run) -> Any:
        value = getattr(source, attribute)
        if value is None:
            if required:
                raise GiveUp("null in a non-null field")
            return None
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise GiveUp("leaf")
        return coerced

    return basic_leaf


class CompilingExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor with compiled completion of object values (see the module doc)."""

    _run: _Run | None = None

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        compiler = _compiler_of(self.schema)
        middleware = self.middleware_manager
        if (
            compiler is not None
            and position_context is None
            and self.error_propagation
            # an extension hooking `resolve` must see every field: then nothing is compiled
            and (middleware is None or not middleware.middlewares)
        ):
            complete = compiler.plan(self, return_type, field_details_list)
            if complete is not None:
                run = self._run
                if run is None:
                    run = self._run = _Run(self)
                # on any exception, the generic completion below runs instead and reports it properly
                with suppress(Exception):
                    completed = complete(result, run)
                    compiler.walks += 1
                    return completed
                compiler.fallbacks += 1
        return super().complete_object_value(return_type, field_details_list, info, path, result, position_context)


def _compiler_of(schema: GraphQLSchema) -> Compiler | None:
    strawberry_schema = getattr(schema, "_strawberry_schema", None)
    return getattr(strawberry_schema, "compiler", None)
