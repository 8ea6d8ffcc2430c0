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
import keyword
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
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
        return _generate(object_type.name, fields, object_type.is_type_of)

    def _field(self, executor: CompilingExecutor, parent: GraphQLObjectType, details: Any, depth: int) -> Complete:
        node: FieldNode = details[0].node
        name = node.name.value
        if name == "__typename":
            return _Constant(parent.name)
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
        nested = self._nested(executor, read_value, field_def.type, details, depth)
        if nested is not None:
            return nested
        complete_value = self._type(executor, field_def.type, details, depth)

        def field_value(source: Any, run: _Run) -> Any:
            return complete_value(read_value(source, run), run)

        return field_value

    def _nested(
        self, executor: CompilingExecutor, read_value: Complete, graphql_type: Any, details: Any, depth: int
    ) -> _Nested | None:
        """An object or a list of objects below this field, walked inline by the generated code (`_generate`)."""
        required = isinstance(graphql_type, GraphQLNonNull)
        inner = graphql_type.of_type if required else graphql_type
        item_required: bool | None = None
        if isinstance(inner, GraphQLList):
            inner = inner.of_type
            item_required = isinstance(inner, GraphQLNonNull)
            inner = inner.of_type if item_required else inner
        if not isinstance(inner, GraphQLObjectType):
            return None
        complete_object = self._object(executor, inner, details, depth + 1)
        complete_value = self._type(executor, graphql_type, details, depth, complete_object)
        return _Nested(read_value, required, item_required, complete_object, complete_value)

    def _type(
        self,
        executor: CompilingExecutor,
        graphql_type: Any,
        details: Any,
        depth: int,
        complete_object: Complete | None = None,
    ) -> Complete:
        """The completion of a value of this type (`complete_object`: its object type's, already compiled)."""
        if isinstance(graphql_type, GraphQLNonNull):
            inner = self._type(executor, graphql_type.of_type, details, depth, complete_object)

            def non_null(value: Any, run: _Run) -> Any:
                if value is None:
                    raise GiveUp("null in a non-null field")
                return inner(value, run)

            return non_null
        if isinstance(graphql_type, GraphQLList):
            item = self._type(executor, graphql_type.of_type, details, depth, complete_object)

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
            if complete_object is None:
                complete_object = self._object(executor, graphql_type, details, depth + 1)
            object_complete = complete_object

            def object_value(value: Any, run: _Run) -> Any:
                return None if value is None else object_complete(value, run)

            return object_value
        raise GiveUp("abstract type")


def _basic_leaf(attribute: str, graphql_type: Any) -> Complete | None:
    """An attribute holding a scalar or enum (the commonest field) in one step instead of three."""
    required = isinstance(graphql_type, GraphQLNonNull)
    leaf_type = graphql_type.of_type if required else graphql_type
    if not isinstance(leaf_type, GraphQLScalarType | GraphQLEnumType):
        return None
    return _Leaf(attribute, required, leaf_type)


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class _Leaf:
    """A scalar or enum attribute: read, checked and coerced inline in the generated walk (`_generate`).

    Values of the type the coercion would return unchanged skip it (a `str` for String and ID, a `bool` for
    Boolean, a 32-bit `int` for Int, a member of the enum's class, looked up in a table of the coercion's own
    answers); any other value goes through the type's `coerce_output_value`, as before."""

    __slots__ = ("attribute", "coerce", "enum_class", "enum_names", "fast", "required")

    def __init__(self, attribute: str, required: bool, leaf_type: Any) -> None:
        self.attribute = attribute
        self.required = required
        self.coerce = leaf_type.coerce_output_value
        self.fast: str | None = _FAST.get(self.coerce)
        self.enum_class: Any = None
        self.enum_names: dict[Any, str] = {}
        wrapped = getattr(leaf_type, "wrapped_cls", None)
        if self.fast is None and isinstance(leaf_type, GraphQLEnumType) and isinstance(wrapped, type):
            for member in list(wrapped.__members__.values()):
                with suppress(Exception):
                    name = self.coerce(member)
                    if isinstance(name, str):
                        self.enum_names[member] = name
            if self.enum_names:
                self.enum_class, self.fast = wrapped, "enum"

    def __call__(self, source: Any, _run: _Run) -> Any:
        value = getattr(source, self.attribute)
        if value is None:
            if self.required:
                raise GiveUp("null in a non-null field")
            return None
        coerced = self.coerce(value)
        if coerced is None or coerced is Undefined:
            raise GiveUp("leaf")
        return coerced


_FAST: dict[Any, str] = {
    GraphQLString.coerce_output_value: "str",
    GraphQLID.coerce_output_value: "str",
    GraphQLBoolean.coerce_output_value: "bool",
    GraphQLInt.coerce_output_value: "int",
}
_FAST_TEST = {
    "str": "type(v) is str",
    "bool": "type(v) is bool",
    "int": f"type(v) is int and {_INT_MIN} <= v <= {_INT_MAX}",
    "enum": "type(v) is E{i} and v in N{i}",
}


class _Constant:
    """A value known when compiling (`__typename`)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __call__(self, _source: Any, _run: _Run) -> Any:
        return self.value


class _Nested:
    """A field holding an object (`item_required` None) or a list of objects, which the generated walk reads
    and completes inline; `complete_value` is the same completion as closures, for values of any other shape
    (a tuple, something that is not a list: it gives up)."""

    __slots__ = ("complete_object", "complete_value", "item_required", "read_value", "required")

    def __init__(
        self,
        read_value: Complete,
        required: bool,
        item_required: bool | None,
        complete_object: Complete,
        complete_value: Complete,
    ) -> None:
        self.read_value = read_value
        self.required = required
        self.item_required = item_required
        self.complete_object = complete_object
        self.complete_value = complete_value

    def __call__(self, source: Any, run: _Run) -> Any:
        return self.complete_value(self.read_value(source, run), run)


def _null_item() -> Any:
    raise GiveUp("null in a non-null list item")


def _plain_name(attribute: str) -> bool:
    """An attribute the generated code can read as `source.<name>` (a name, not a keyword, not mangled)."""
    return attribute.isidentifier() and not keyword.iskeyword(attribute) and not attribute.startswith("__")


def _generate(type_name: str, fields: list[tuple[str, Complete]], is_type_of: Any) -> Complete:
    """One object's walk as one generated function: leaves read and checked inline (`_Leaf`), every other
    field through its compiled closure, in the selection's order, into the same dict the closures made."""
    namespace: dict[str, Any] = {"GiveUp": GiveUp, "Undefined": Undefined, "is_type_of": is_type_of}
    lines = ["def complete(source, run):"]
    if is_type_of is not None:
        lines += ["    if not is_type_of(source, None):", '        raise GiveUp("type")']
    for i, (_name, field) in enumerate(fields):
        if isinstance(field, _Leaf) and _plain_name(field.attribute):
            namespace[f"C{i}"] = field.coerce
            if field.fast == "enum":
                namespace[f"E{i}"], namespace[f"N{i}"] = field.enum_class, field.enum_names
            lines.append(f"    v = source.{field.attribute}")
            lines.append("    if v is None:")
            lines.append(
                '        raise GiveUp("null in a non-null field")' if field.required else f"        r{i} = None"
            )
            if field.fast is not None:
                lines.append(f"    elif {_FAST_TEST[field.fast].format(i=i)}:")
                lines.append(f"        r{i} = N{i}[v]" if field.fast == "enum" else f"        r{i} = v")
            lines.append("    else:")
            lines.append(f"        r{i} = C{i}(v)")
            lines.append(f"        if r{i} is None or r{i} is Undefined:")
            lines.append('            raise GiveUp("leaf")')
        elif isinstance(field, _Constant):
            namespace[f"F{i}"] = field.value
            lines.append(f"    r{i} = F{i}")
        elif isinstance(field, _Nested):
            lines += _nested_lines(i, field, namespace)
        else:
            namespace[f"F{i}"] = field
            lines.append(f"    r{i} = F{i}(source, run)")
    items = ", ".join(f"{name!r}: r{i}" for i, (name, _field) in enumerate(fields))
    lines.append(f"    return {{{items}}}")
    exec(compile("\n".join(lines), f"<compiled walk of {type_name}>", "exec"), namespace)  # noqa: S102
    return namespace["complete"]  # type: ignore[no-any-return]


def _nested_lines(i: int, field: _Nested, namespace: dict[str, Any]) -> list[str]:
    """The generated lines reading and completing a `_Nested` field into r<i>."""
    read = field.read_value
    namespace.update({f"O{i}": field.complete_object, f"L{i}": field.complete_value, "settled": _settled})
    namespace["null_item"] = _null_item
    if isinstance(read, _ResolverField) and read.method is not None and read.info_name.isidentifier():
        # strawberry's Info of this field, made once per request (`_ResolverField._info`), then the method itself
        namespace.update({f"K{i}": id(read), f"I{i}": read._info, f"M{i}": read.method})
        lines = [
            f"    info = run.infos.get(K{i})",
            "    if info is None:",
            f"        info = I{i}(run)",
            f"    v = M{i}(source, {read.info_name}=info)",
            "    if type(v) is not list:",
            "        v = settled(v)",
        ]
    else:
        namespace[f"R{i}"] = read
        lines = [f"    v = R{i}(source, run)"]
    lines.append("    if v is None:")
    lines.append('        raise GiveUp("null in a non-null field")' if field.required else f"        r{i} = None")
    if field.item_required is None:
        lines += ["    else:", f"        r{i} = O{i}(v, run)"]
    else:
        item = (
            f"O{i}(x, run) if x is not None else null_item()"
            if field.item_required
            else f"None if x is None else O{i}(x, run)"
        )
        lines += [
            "    elif type(v) is list:",
            f"        r{i} = [{item} for x in v]",
            "    else:",
            f"        r{i} = L{i}(v, run)",
        ]
    return lines


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
