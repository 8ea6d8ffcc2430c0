"""The one field decision: for a role set and a schema coordinate, whether a value is hidden, masked or clear.

Every path that hands out record data asks it: the GraphQL schema (which fields exist for a role), masked
fields, the FHIR bundle, the amendment history, exports, subscriptions, search candidates. A value the caller
sees masked may not be searched or matched on as if it were clear (`match_mode`: every search path asks it
through resolvers/data/matching.py).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from policies.masking import MASKS


class FieldMode(Enum):
    HIDDEN = 0
    MASKED = 1
    CLEAR = 2


class MatchMode(Enum):
    """How a search or a duplicate check may compare a value with what a caller typed."""

    NONE = 0  # hidden from the caller: never compared (no answer may depend on it)
    LOOKUP = 1  # seen masked: a recorded lookup, strictly limited per account (resolvers/data/matching.py)
    EXACT = 2  # seen in clear: compared freely


Permissions = frozenset[tuple[str, str]]


def grants(permissions: Permissions, coordinate: str, action: str) -> bool:
    """A permission on the coordinate itself, or on its type's `Type.*`."""
    type_name = coordinate.split(".", 1)[0]
    return (coordinate, action) in permissions or (f"{type_name}.*", action) in permissions


# Plumbing types carry no data of their own: the field that returns them is what the policy gates.
def is_structural(type_name: str) -> bool:
    return type_name == "PageInfo" or type_name.endswith(("Connection", "Edge"))


ROOT_OPERATIONS = ("Mutation",)


class FieldDecision:
    """The decisions of one role set, each made once (a dict look-up afterwards)."""

    def __init__(self, permissions: Permissions) -> None:
        self.permissions = permissions
        self._modes: dict[tuple[str, str], FieldMode] = {}

    def mode(self, type_name: str, field_name: str) -> FieldMode:
        key = (type_name, field_name)
        found = self._modes.get(key)
        if found is None:
            found = self._modes[key] = self._decide(type_name, field_name)
        return found

    def _decide(self, type_name: str, field_name: str) -> FieldMode:
        if is_structural(type_name):
            return FieldMode.CLEAR
        coordinate = f"{type_name}.{field_name}"
        if type_name in ROOT_OPERATIONS:
            return FieldMode.CLEAR if grants(self.permissions, coordinate, "execute") else FieldMode.HIDDEN
        if grants(self.permissions, coordinate, "read"):
            return FieldMode.CLEAR
        if coordinate in MASKS and grants(self.permissions, coordinate, "read_masked"):
            return FieldMode.MASKED
        return FieldMode.HIDDEN

    def shown(self, type_name: str, field_name: str, value: str | None) -> str | None:
        """The value as this role set may see it: as is, masked, or None."""
        if value is None:
            return None
        mode = self.mode(type_name, field_name)
        if mode is FieldMode.CLEAR:
            return value
        if mode is FieldMode.MASKED:
            mask: Callable[[str], str] = MASKS[f"{type_name}.{field_name}"]
            return mask(value)
        return None

    def visible(self, type_name: str, field_name: str) -> bool:
        return self.mode(type_name, field_name) is not FieldMode.HIDDEN

    def matchable(self, type_name: str, field_name: str) -> bool:
        """Whether a search or a duplicate check may compare this value freely: only where it is seen in clear."""
        return self.mode(type_name, field_name) is FieldMode.CLEAR

    def match_mode(self, type_name: str, field_name: str) -> MatchMode:
        """The one rule for matching on a value: freely where it is seen in clear, as a recorded and limited
        lookup where it is seen masked (a hit would give the masked value back whole), never where hidden."""
        mode = self.mode(type_name, field_name)
        if mode is FieldMode.CLEAR:
            return MatchMode.EXACT
        return MatchMode.LOOKUP if mode is FieldMode.MASKED else MatchMode.NONE
