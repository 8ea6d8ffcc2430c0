"""Compiled input conversion: each input type's arguments turned into its Python object by a converter built once.

strawberry converts an input object argument generically on every call: for each field of the type it resolves the
field's annotation again (a generic-type check per field), dispatches on the kind of type and recurses, even where
the value needs no converting at all (a string, a number, a boolean, an enum member: graphql-core has coerced them
already). For a mutation's input of seven fields that was about a tenth of the request's CPU (bench/results/extra.md).

strawberry lets an input type build its own value (`StrawberryObjectDefinition.from_input`, the hook its pydantic
integration uses). Here each input type of a schema gets one, built once from its resolved fields: leaves (scalars
other than GlobalID, enums, and their optional forms) are taken as they are, which is what strawberry does with them;
everything else (lists of inputs, nested inputs, GlobalIDs) goes through strawberry's own `convert_argument` with the
field's type resolved in advance. The object built is the same: the type called with the same keyword arguments,
the fields left out of the value given their defaults (None where the field has none, as strawberry does).

Input types with `Maybe` fields keep strawberry's path (its validation of explicit nulls skips types that build their
own value). Installed with compiled completion (`COMPILED_COMPLETION`, on by default; off with `TEST_SPEEDUPS=off`).
An input type's definition is shared by every role's schema, so it is installed once per type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any

from strawberry.relay.types import GlobalID
from strawberry.types.arguments import InputContext, _is_leaf_type, convert_argument
from strawberry.types.base import StrawberryMaybe, StrawberryObjectDefinition, StrawberryOptional
from strawberry.types.enum import has_enum_definition

Convert = Callable[[Any, InputContext, str], Any]


def _taken_as_is(type_: Any, scalars: Mapping[object, Any]) -> bool:
    """What strawberry's `convert_argument` returns unchanged: a leaf (not a GlobalID), or an optional one."""
    if isinstance(type_, StrawberryMaybe):
        return False
    if isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    if type_ is GlobalID:
        return False
    return bool(_is_leaf_type(type_, scalars) or has_enum_definition(type_))


def _as_is(value: Any, _context: InputContext, _name: str) -> Any:
    return value


def _converter(type_: Any, scalars: Mapping[object, Any]) -> Convert:
    if _taken_as_is(type_, scalars):
        return _as_is

    def convert(value: Any, context: InputContext, name: str) -> Any:
        return convert_argument(
            value, type_, context.scalar_registry, context.config, context.info, path=(*context.path, name)
        )

    return convert


def compiled_input(definition: StrawberryObjectDefinition, scalars: Mapping[object, Any], config: Any) -> Any:
    """The `from_input` of one input type, or None where strawberry's own path must stay (a `Maybe` field)."""
    fields = []
    for field in definition.fields:
        type_ = field.resolve_type(type_definition=definition)
        if isinstance(type_, StrawberryMaybe):
            return None
        fields.append((config.name_converter.from_field(field), field.python_name, _converter(type_, scalars)))
    unset = {
        field.python_name: None
        for field in definition.fields
        if field.default_value is MISSING and field.default_factory is MISSING
    }
    steps = tuple(fields)

    def from_input(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        kwargs = dict(unset)
        for graphql_name, python_name, convert in steps:
            if graphql_name in value:
                kwargs[python_name] = convert(value[graphql_name], context, graphql_name)
        return cls(**kwargs)

    from_input.compiled = True  # type: ignore[attr-defined]
    return from_input


def compile_inputs(schema: Any) -> int:
    """Install a compiled `from_input` on every input type of a strawberry schema that has none; how many."""
    converter = schema.schema_converter
    installed = 0
    for concrete in list(converter.type_map.values()):
        definition = concrete.definition
        if not isinstance(definition, StrawberryObjectDefinition) or not definition.is_input:
            continue
        if definition.from_input is not None:
            continue
        built = compiled_input(definition, converter.scalar_registry, converter.config)
        if built is not None:
            definition.from_input = built
            installed += 1
    return installed
