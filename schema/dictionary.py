"""Dictionaries: the labels (Chinese and English), order and "in use" flag of every enum value the API exposes.

The one source of the enums' display labels: a console or mini-program shows `labelZh`/`labelEn` for a value it
received. Each caller sees the dictionaries of the enums in their own schema; admins relabel and reorder any.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from core.errors import bad_input
from resolvers import dictionary as dictionaries
from resolvers.data.context import Info
from schema.engine.catalog import Enum, schema_enums


@strawberry.type(name="DictionaryEntry", description="One coded value of a dictionary, with its labels.")
class DictionaryEntryType:
    code: str = strawberry.field(description="The enum value as the API sends it (never changes).")
    label_zh: str = strawberry.field(description="The Chinese label shown for the value.")
    label_en: str = strawberry.field(description="The English label shown for the value.")
    sort_order: int = strawberry.field(description="Position in pickers and lists, smallest first.")
    in_use: bool = strawberry.field(description="Offered for new records; a value out of use is still shown.")
    default_label_zh: str = strawberry.field(description="The code's own Chinese label (before any relabelling).")
    default_label_en: str = strawberry.field(description="The code's own English label (before any relabelling).")

    @classmethod
    def of(cls, entry: dictionaries.Entry) -> DictionaryEntryType:
        return cls(
            code=entry.code,
            label_zh=entry.label_zh,
            label_en=entry.label_en,
            sort_order=entry.sort_order,
            in_use=entry.in_use,
            default_label_zh=entry.default_zh,
            default_label_en=entry.default_en,
        )


@strawberry.type(name="Dictionary", description="The coded values of one enum of the API, in display order.")
class DictionaryType:
    key: str = strawberry.field(description="The enum's name in the schema (`Gender`, `FollowUpStatus`).")
    description: str | None = strawberry.field(description="What the enum is, from the schema.")
    entries: list[DictionaryEntryType] = strawberry.field(description="Its values, in display order.")


def _complete(info: Info) -> dict[str, Enum]:
    return schema_enums(info.context.services.registry.full)


def _values(enums: dict[str, Enum]) -> dict[str, tuple[str, ...]]:
    return {name: enum.values for name, enum in enums.items()}


def _dictionary(enum: Enum, entries: list[dictionaries.Entry]) -> DictionaryType:
    return DictionaryType(
        key=enum.name, description=enum.description, entries=[DictionaryEntryType.of(e) for e in entries]
    )


@strawberry.type
class DictionaryQuery:
    @strawberry.field(
        description="The dictionaries of the enums in your schema (or those named), each in display order."
    )
    async def dictionaries(
        self,
        info: Info,
        keys: Annotated[list[str] | None, strawberry.argument(description="Only these enums (by name).")] = None,
    ) -> list[DictionaryType]:
        enums = schema_enums(info.schema)
        if keys is not None:
            unknown = [key for key in keys if key not in enums]
            if unknown:
                raise bad_input(f"No dictionary {', '.join(unknown)} in your schema", "keys")
            enums = {key: enums[key] for key in keys}
        found = await dictionaries.list_dictionaries(info.context, _values(enums))
        return [_dictionary(enums[name], entries) for name, entries in found.items()]


@strawberry.type
class DictionaryMutation:
    @strawberry.mutation(
        description="Relabel a coded value, or take it out of (back into) use. Values cannot be added."
    )
    async def update_dictionary_entry(
        self,
        info: Info,
        dictionary: Annotated[str, strawberry.argument(description="The enum's name.")],
        code: Annotated[str, strawberry.argument(description="One of its values.")],
        label_zh: Annotated[
            str | None, strawberry.argument(description="New Chinese label (1-100 characters).")
        ] = None,
        label_en: Annotated[
            str | None, strawberry.argument(description="New English label (1-100 characters).")
        ] = None,
        in_use: Annotated[bool | None, strawberry.argument(description="Whether new records may use it.")] = None,
    ) -> DictionaryType:
        enums = _complete(info)
        entries = await dictionaries.update_entry(
            info.context,
            _values(enums),
            dictionary=dictionary,
            code=code,
            label_zh=label_zh,
            label_en=label_en,
            in_use=in_use,
        )
        return _dictionary(enums[dictionary], entries)

    @strawberry.mutation(description="Put a dictionary's values in a new display order (each value exactly once).")
    async def reorder_dictionary(
        self,
        info: Info,
        dictionary: Annotated[str, strawberry.argument(description="The enum's name.")],
        codes: Annotated[list[str], strawberry.argument(description="Every value of the enum, in the new order.")],
    ) -> DictionaryType:
        enums = _complete(info)
        entries = await dictionaries.reorder(info.context, _values(enums), dictionary=dictionary, codes=codes)
        return _dictionary(enums[dictionary], entries)
