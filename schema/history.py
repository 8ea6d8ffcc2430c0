"""A record's amendment history in API terms: what `history(...).changes` shows a caller.

Amendments are stored as the database row changed (column names, stored values: resolvers/audit/history.py).
Shown, each change is named by the GraphQL field that carries the value (`painScore`, `voided.reason`), a
reference is the opaque id the API uses (core/ids.py), an enum value is the name the schema shows (`SCHEDULED`),
and the value passes the caller's one field decision (policies/decision.py): a field hidden from the caller's
role is left out, a masked one is masked. A column that no field of the caller's schema carries (search hashes,
internal links) is left out. Nothing here names a record type: the row's model and the role's schema say it all.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from graphql import GraphQLEnumType, GraphQLObjectType, GraphQLSchema, get_named_type
from sqlmodel import SQLModel
from strawberry.utils.str_converters import to_camel_case

from core.ids import encode_id
from policies.decision import FieldDecision, FieldMode
from policies.masking import MASKS
from resolvers.audit.history import SENSITIVE

# Columns whose field is not their camelCase name: column -> (the name shown, the field path that carries it).
ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "voided_at": ("voided.at", ("voided", "at")),
    "voided_by_id": ("voided.byId", ("voided", "by")),
    "void_reason": ("voided.reason", ("voided", "reason")),
    "consent_scope": ("consent.scope", ("consent", "scope")),
    "consent_version": ("consent.version", ("consent", "version")),
    "consent_at": ("consent.givenAt", ("consent", "givenAt")),
    "response_at": ("response.submittedAt", ("response", "submittedAt")),
    "wechat_user_id": ("linkedToWechat", ("linkedToWechat",)),
}
# Columns that refer to a row without a foreign key: column -> the type of the opaque id.
REFERENCES = {"voided_by_id": "User"}
# A merge's entry (kind merge or unmerge) names the merge and its two patients.
MERGE_KEYS: dict[str, tuple[str, str]] = {
    "merge": ("mergeId", "PatientMerge"),
    "unmerge": ("mergeId", "PatientMerge"),
    "keep": ("keepId", "Patient"),
    "merged": ("mergedId", "Patient"),
}


@cache
def models_by_name() -> dict[str, type[SQLModel]]:
    """Every table model by its class name (the record type of an amendment, the type of an opaque id)."""
    return {mapper.class_.__name__: mapper.class_ for mapper in SQLModel._sa_registry.mappers}  # type: ignore[attr-defined]


@cache
def _models_by_table() -> dict[str, str]:
    return {model.__tablename__: name for name, model in models_by_name().items()}  # type: ignore[misc]


@cache
def reference_type(model_name: str, column: str) -> str | None:
    """The type of the opaque id a foreign-key column holds (the referenced table's model), or None."""
    if column in REFERENCES:
        return REFERENCES[column]
    model = models_by_name().get(model_name)
    table = getattr(model, "__table__", None)
    if table is None or column not in table.c:
        return None
    for foreign_key in table.c[column].foreign_keys:
        return _models_by_table().get(foreign_key.column.table.name)
    return None


def _slot(type_name: str, column: str, graphql_type: GraphQLObjectType) -> tuple[str, tuple[str, ...]] | None:
    """(name shown, field path) of a column, judged against the complete type; None: no field carries it."""
    if column in ALIASES:
        return ALIASES[column]
    camel = to_camel_case(column)
    if camel in graphql_type.fields:
        return camel, (camel,)
    if column.endswith("_id") and reference_type(type_name, column):
        base = camel[: -len("Id")]
        for carrier in (base, f"{base}Name"):  # `physicianName` shows who `physician_id` refers to
            if carrier in graphql_type.fields:
                return camel, (carrier,)
        return None
    head, _, rest = column.partition("_")
    holder = graphql_type.fields.get(head)
    if rest and holder is not None:
        inner = get_named_type(holder.type)
        if isinstance(inner, GraphQLObjectType) and to_camel_case(rest) in inner.fields:
            return f"{head}.{to_camel_case(rest)}", (head, to_camel_case(rest))
    return None


class HistoryView:
    """How one role set's schema shows the changes of one record type."""

    def __init__(self, schema: GraphQLSchema, decision: FieldDecision, type_name: str) -> None:
        self.schema = schema
        self.decision = decision
        self.type_name = type_name

    def _walk(self, path: tuple[str, ...]) -> Iterator[tuple[str, str, Any]]:
        """(parent type, field, GraphQL field) along a field path of the caller's schema; stops where it ends."""
        parent = self.schema.type_map.get(self.type_name)
        for name in path:
            if not isinstance(parent, GraphQLObjectType) or name not in parent.fields:
                return
            graphql_field = parent.fields[name]
            yield parent.name, name, graphql_field
            parent = get_named_type(graphql_field.type)

    def _shown(self, column: str, value: Any, path: tuple[str, ...], shown_name: str) -> tuple[bool, Any]:
        """(visible, the value as the caller sees it) of one stored value."""
        steps = list(self._walk(path))
        if len(steps) != len(path):
            return False, None  # the caller's schema has no such field: hidden from their role
        parent, name, graphql_field = steps[-1]
        mode = self.decision.mode(parent, name)
        if mode is FieldMode.HIDDEN:
            return False, None
        if value is None or column in SENSITIVE:
            return True, value  # an encrypted value's change is kept as a marker, never the value
        if shown_name == "linkedToWechat":
            return True, True
        if shown_name.endswith("Id") or column == "id":
            target = self.type_name if column == "id" else reference_type(self.type_name, column)
            if target is not None and isinstance(value, int):
                return True, encode_id(target, value)
        named = get_named_type(graphql_field.type)
        if isinstance(named, GraphQLEnumType):
            for enum_name, enum_value in named.values.items():
                if value in (enum_value.value, getattr(enum_value.value, "value", enum_value.value)):
                    return True, enum_name
        if mode is FieldMode.MASKED and isinstance(value, str):
            mask = MASKS.get(f"{parent}.{name}")
            return (True, mask(value)) if mask else (False, None)
        return True, value

    def change(self, column: str, change: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        complete = self._complete_type()
        slot = _slot(self.type_name, column, complete) if complete is not None else None
        if slot is None:
            return None
        shown_name, path = slot
        visible, before = self._shown(column, change.get("before"), path, shown_name)
        if not visible:
            return None
        _, after = self._shown(column, change.get("after"), path, shown_name)
        if shown_name == "linkedToWechat":
            before, after = change.get("before") is not None, change.get("after") is not None
        return shown_name, {"before": before, "after": after}

    def _complete_type(self) -> GraphQLObjectType | None:
        found = self.schema.type_map.get(self.type_name)
        return found if isinstance(found, GraphQLObjectType) else None

    def merge_change(self, key: str, change: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """A merge entry's own keys: the merge and its patients as opaque ids, the moved rows by record type."""
        if key in MERGE_KEYS:
            shown_name, target = MERGE_KEYS[key]
            return shown_name, {k: encode_id(target, v) if isinstance(v, int) else v for k, v in change.items()}
        if key == "moved":
            moved = change.get("after") or {}
            by_type: dict[str, list[str]] = {}
            for table, ids in moved.items() if isinstance(moved, dict) else ():
                model = _models_by_table().get(table)
                if model is not None and isinstance(ids, list):
                    by_type[model] = [encode_id(model, pk) for pk in ids if isinstance(pk, int)]
            return "movedRecords", {"before": None, "after": by_type}
        return None


def api_changes(
    schema: GraphQLSchema, decision: FieldDecision, type_name: str, kind: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """One amendment's changes as the caller's schema (`schema`, `decision`) shows them."""
    view = HistoryView(schema, decision, type_name)
    shown: dict[str, Any] = {}
    for column, change in changes.items():
        if not isinstance(change, dict):
            continue
        converted = view.merge_change(column, change) if kind in ("merge", "unmerge") else None
        if converted is None:
            converted = view.change(column, change)
        if converted is not None:
            shown[converted[0]] = converted[1]
    return shown
