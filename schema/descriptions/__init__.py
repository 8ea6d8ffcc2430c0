"""The domains' descriptions of what strawberry cannot describe beside the code (schema/engine/descriptions.py
fills them in when each role's schema is built): one module per group of domains, each a dict of schema coordinate
-> text. Enum values are described by their default labels (resolvers/dictionary/labels.py), the one source of
them."""

from __future__ import annotations

from resolvers.dictionary.labels import DEFAULT_LABELS
from schema.descriptions.engagement import ENGAGEMENT
from schema.descriptions.operations import OPERATIONS
from schema.descriptions.people import PEOPLE
from schema.descriptions.records import RECORDS
from schema.descriptions.roots import ROOTS


def enum_values() -> dict[str, str]:
    """`Gender.MALE` -> `Male (男).`, for every enum value the dictionaries label."""
    return {
        f"{enum}.{code}": f"{english} ({chinese})."
        for enum, values in DEFAULT_LABELS.items()
        for code, (chinese, english) in values.items()
    }


def catalogue() -> dict[str, str]:
    """Every domain's descriptions together; a coordinate described twice is a mistake."""
    entries: dict[str, str] = {}
    for part in (enum_values(), RECORDS, PEOPLE, ENGAGEMENT, OPERATIONS, ROOTS):
        twice = set(entries) & set(part)
        if twice:
            raise ValueError(f"described twice: {sorted(twice)}")
        entries.update(part)
    return entries
