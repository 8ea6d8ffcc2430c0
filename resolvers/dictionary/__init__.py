"""Dictionaries: labels, order and the "in use" flag of the coded values the API exposes.

Which dictionaries exist, and their values, is the code's: the schema layer hands in the enums of the complete
schema (`Enums`: dictionary -> its values in declaration order). A stored row (models/dictionary.py) holds what
an admin changed about one value; admins relabel, reorder and take values out of use, never add one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.errors import bad_input
from core.timeutil import utcnow
from core.validation import check_characters
from models.dictionary import DictionaryEntry
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context
from resolvers.dictionary.labels import DEFAULT_LABELS

Enums = Mapping[str, Sequence[str]]
LABEL_LIMIT = 100


@dataclass(frozen=True)
class Entry:
    """One coded value as the console shows it."""

    dictionary: str
    code: str
    label_zh: str
    label_en: str
    sort_order: int
    in_use: bool
    default_zh: str
    default_en: str


def default_labels(dictionary: str, code: str) -> tuple[str, str]:
    """The code's own labels; a value somehow missing from DEFAULT_LABELS shows its code (tests keep none missing)."""
    return DEFAULT_LABELS.get(dictionary, {}).get(code, (code, code))


def _merge(dictionary: str, values: Sequence[str], rows: Sequence[DictionaryEntry]) -> list[Entry]:
    stored = {row.code: row for row in rows if row.dictionary == dictionary}
    entries = []
    for index, code in enumerate(values):
        zh, en = default_labels(dictionary, code)
        row = stored.get(code)
        entries.append(
            Entry(
                dictionary=dictionary,
                code=code,
                label_zh=row.label_zh if row else zh,
                label_en=row.label_en if row else en,
                sort_order=row.sort_order if row else index,
                in_use=row.in_use if row else True,
                default_zh=zh,
                default_en=en,
            )
        )
    position = {code: index for index, code in enumerate(values)}
    return sorted(entries, key=lambda entry: (entry.sort_order, position[entry.code]))


async def list_dictionaries(ctx: Context, enums: Enums) -> dict[str, list[Entry]]:
    """Every dictionary of `enums` (those the caller's schema holds), its entries in their order."""
    names = list(enums)
    statement = await ctx.data.select(
        DictionaryEntry,
        then=lambda s: s.where(DictionaryEntry.dictionary.in_(names)),  # type: ignore[attr-defined]
    )
    rows = await ctx.data.objects(statement) if names else []
    return {name: _merge(name, enums[name], rows) for name in sorted(names)}


def _values(enums: Enums, dictionary: str) -> Sequence[str]:
    values = enums.get(dictionary)
    if values is None:
        raise bad_input(f"No dictionary {dictionary!r}: dictionaries are the enums of the API", "dictionary")
    return values


def _label(value: str, field: str) -> str:
    value = check_characters(value, field).strip()
    if not value or len(value) > LABEL_LIMIT:
        raise bad_input(f"A label must be 1 to {LABEL_LIMIT} characters", field)
    return value


async def _rows(ctx: Context, unit: WriteUnit, dictionary: str) -> dict[str, DictionaryEntry]:
    statement = await ctx.data.select(
        DictionaryEntry, purpose="write", then=lambda s: s.where(DictionaryEntry.dictionary == dictionary)
    )
    return {row.code: row for row in await unit.objects(statement)}


def _row(rows: dict[str, DictionaryEntry], dictionary: str, code: str, index: int) -> DictionaryEntry:
    row = rows.get(code)
    if row is None:
        zh, en = default_labels(dictionary, code)
        row = rows[code] = DictionaryEntry(dictionary=dictionary, code=code, label_zh=zh, label_en=en, sort_order=index)
    return row


async def update_entry(
    ctx: Context,
    enums: Enums,
    *,
    dictionary: str,
    code: str,
    label_zh: str | None,
    label_en: str | None,
    in_use: bool | None,
) -> list[Entry]:
    """Relabel one value or take it out of (or back into) use; the dictionary's entries after the change."""
    values = _values(enums, dictionary)
    if code not in values:
        raise bad_input(f"{dictionary} has no value {code!r}; values come from the code", "code")
    zh = _label(label_zh, "labelZh") if label_zh is not None else None
    en = _label(label_en, "labelEn") if label_en is not None else None
    async with ctx.data.write(
        operation="updateDictionaryEntry",
        action="update",
        entity_type="DictionaryEntry",
        conflict_message="The dictionary changed at the same time: try again",
    ) as unit:
        rows = await _rows(ctx, unit, dictionary)
        row = _row(rows, dictionary, code, values.index(code))
        before = {"labelZh": row.label_zh, "labelEn": row.label_en, "inUse": row.in_use}
        if zh is not None:
            row.label_zh = zh
        if en is not None:
            row.label_en = en
        if in_use is not None:
            row.in_use = in_use
        row.updated_at = utcnow()
        unit.add(row)
        unit.entity_id = f"{dictionary}.{code}"[:64]
        unit.detail = {
            "before": before,
            "after": {"labelZh": row.label_zh, "labelEn": row.label_en, "inUse": row.in_use},
        }
    return (await list_dictionaries(ctx, {dictionary: values}))[dictionary]


async def reorder(ctx: Context, enums: Enums, *, dictionary: str, codes: Sequence[str]) -> list[Entry]:
    """Put a dictionary's values in the given order: every value once, none the code does not know."""
    values = _values(enums, dictionary)
    if len(codes) != len(values) or set(codes) != set(values):
        raise bad_input(f"List each value of {dictionary} exactly once: {', '.join(values)}", "codes")
    async with ctx.data.write(
        operation="reorderDictionary",
        action="update",
        entity_type="DictionaryEntry",
        conflict_message="The dictionary changed at the same time: try again",
    ) as unit:
        rows = await _rows(ctx, unit, dictionary)
        for index, code in enumerate(codes):
            row = _row(rows, dictionary, code, values.index(code))
            row.sort_order = index
            row.updated_at = utcnow()
            unit.add(row)
        unit.entity_id = dictionary
        unit.detail = {"order": list(codes)}
    return (await list_dictionaries(ctx, {dictionary: values}))[dictionary]
