"""Reach rules: how a row of a table reaches a patient, a department or a user, and so who may see it.

A rule turns a caller's Access into one SQL condition on the table's rows. Rules compose: a message reaches
whoever its conversation reaches (`Via`), a draft article its author and the editors of its department
(`AnyOf(Own(...), Holding(capability, InDepartments(...)))`). Each table declares its rules once, in
policies/tables.py; the repository (resolvers/data/repository.py) applies them to every statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, false, literal, or_, select, true

from policies.access import Access
from policies.capabilities import Capability
from policies.scope import cached_patient_scope


class Rule(Protocol):
    def clause(self, table: Any, access: Access) -> ColumnElement[bool]: ...


class Declared(Protocol):
    def rule(self, purpose: str) -> Rule: ...


# Each table's declared reach (filled by policies/tables.py, which imports this module).
DECLARED: dict[Any, Declared] = {}


def reach_clause(model: Any, access: Access, purpose: str = "read") -> ColumnElement[bool]:
    """The condition on `model`'s rows for this caller and purpose."""
    found = DECLARED.get(model)
    if found is None:
        raise LookupError(f"no reach declared for {getattr(model, '__tablename__', model)} (policies/tables.py)")
    return found.rule(purpose).clause(model, access)


def admits(model: Any, access: Access, values: Mapping[str, Any], purpose: str = "write") -> bool:
    """Whether a row of `model` with these values would be within the caller's reach for `purpose`: the same
    declared rule as `reach_clause`, judged in Python for a row not yet stored. Only rules over the row's own
    columns can judge one (TypeError otherwise: declare such a rule, do not restate it)."""
    found = DECLARED.get(model)
    if found is None:
        raise LookupError(f"no reach declared for {getattr(model, '__tablename__', model)} (policies/tables.py)")
    return _admits(found.rule(purpose), values, access)


def _admits(rule: Rule, values: Mapping[str, Any], access: Access) -> bool:
    judge = getattr(rule, "admits", None)
    if judge is None:
        raise TypeError(f"{type(rule).__name__} cannot judge a row that is not stored")
    return bool(judge(values, access))


def _exists(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """A correlated `(SELECT 1 ... LIMIT 1) IS NOT NULL`: MariaDB keeps it a per-row look-up where it would
    flatten `IN (SELECT ...)` or EXISTS into a scan of the inner table (policies/scope.py)."""
    return select(literal(1)).where(*conditions).limit(1).scalar_subquery().is_not(None)


@dataclass(frozen=True)
class Everyone:
    """Reference data: anyone whose schema reaches the table reads every row."""

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        return true()

    def admits(self, values: Mapping[str, Any], access: Access) -> bool:
        return True


@dataclass(frozen=True)
class Nobody:
    """Rows no request reads through its own reach: the platform's machinery (sessions, the audit chain's
    state, persisted documents) reached only by system code, through `data.unscoped(...)`."""

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        return false()

    def admits(self, values: Mapping[str, Any], access: Access) -> bool:
        return False


@dataclass(frozen=True)
class PatientScope:
    """The patient table itself: policies/scope.py's condition for the caller's reach."""

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        return patient_clause(access)


def patient_clause(access: Access) -> ColumnElement[bool]:
    return cached_patient_scope(access.user_id, access.scope, access.departments)


@dataclass(frozen=True)
class ViaPatient:
    """A patient's record: reached with its patient."""

    column: str = "patient_id"

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        if access.reaches_all:
            return true()
        from models.patient import Patient

        return _exists(Patient.id == getattr(table, self.column), patient_clause(access))


@dataclass(frozen=True)
class Via:
    """A row reached with the row its column refers to (a message with its conversation): by the target's
    own reach for `purpose`, or by `rule` applied to the target."""

    column: str
    target: Any  # the model the column refers to (by its `id`)
    rule: Rule | None = None
    purpose: str = "read"

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        if self.rule is not None:
            inner = self.rule.clause(self.target, access)
        else:
            inner = reach_clause(self.target, access, self.purpose)
        if _is_true(inner):
            return true()
        if _is_false(inner):
            return false()
        return _exists(self.target.id == getattr(table, self.column), inner)


@dataclass(frozen=True)
class ReferencedBy:
    """A row reached through a row that refers to it (an upload through the message showing it)."""

    source: Any  # the referring model
    column: str  # its column holding this table's id
    rule: Rule | None = None
    purpose: str = "read"

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        if self.rule is not None:
            inner = self.rule.clause(self.source, access)
        else:
            inner = reach_clause(self.source, access, self.purpose)
        if _is_false(inner):
            return false()
        return _exists(getattr(self.source, self.column) == table.id, inner)


@dataclass(frozen=True)
class OwnRecord:
    """Rows about the caller's own patient record (the mini-program's patient)."""

    column: str = "patient_id"

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        if access.user_id is None:
            return false()
        from models.patient import Patient

        return _exists(Patient.id == getattr(table, self.column), Patient.wechat_user_id == access.user_id)


@dataclass(frozen=True)
class InDepartments:
    """Rows of the departments in the caller's data scope."""

    column: str = "department_id"

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        if access.departments is None:
            return true()
        if not access.departments:
            return false()
        return getattr(table, self.column).in_(sorted(access.departments))

    def admits(self, values: Mapping[str, Any], access: Access) -> bool:
        return access.departments is None or values.get(self.column) in access.departments


@dataclass(frozen=True)
class Own:
    """Rows that name the caller (their account, their session, what they wrote)."""

    column: str = "user_id"

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        if access.user_id is None:
            return false()
        return getattr(table, self.column) == access.user_id

    def admits(self, values: Mapping[str, Any], access: Access) -> bool:
        return access.user_id is not None and values.get(self.column) == access.user_id


@dataclass(frozen=True)
class Holding:
    """The inner rule, for callers holding the capability; nothing for anyone else."""

    capability: Capability
    rule: Rule

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        return self.rule.clause(table, access) if access.can(self.capability) else false()

    def admits(self, values: Mapping[str, Any], access: Access) -> bool:
        return access.can(self.capability) and _admits(self.rule, values, access)


@dataclass(frozen=True)
class LoggedIn:
    """The inner rule for any logged-in caller (published content), nothing before login."""

    rule: Rule

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        return self.rule.clause(table, access) if access.user_id is not None else false()


@dataclass(frozen=True)
class Where:
    """A condition of the row itself (published, not deleted): `build(table)`."""

    build: Callable[[Any], ColumnElement[bool]]

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        return self.build(table)


class AnyOf:
    def __init__(self, *rules: Rule) -> None:
        self.rules = rules

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        parts = [rule.clause(table, access) for rule in self.rules]
        if any(_is_true(part) for part in parts):
            return true()
        parts = [part for part in parts if not _is_false(part)]
        return or_(*parts) if parts else false()

    def admits(self, values: Mapping[str, Any], access: Access) -> bool:
        return any(_admits(rule, values, access) for rule in self.rules)


class AllOf:
    def __init__(self, *rules: Rule) -> None:
        self.rules = rules

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        parts = [rule.clause(table, access) for rule in self.rules]
        if any(_is_false(part) for part in parts):
            return false()
        parts = [part for part in parts if not _is_true(part)]
        return and_(*parts) if parts else true()

    def admits(self, values: Mapping[str, Any], access: Access) -> bool:
        return all(_admits(rule, values, access) for rule in self.rules)


@lru_cache(maxsize=1)
def _constants() -> tuple[Any, Any]:
    return type(true()), type(false())


def _is_true(clause: Any) -> bool:
    return isinstance(clause, _constants()[0])


def _is_false(clause: Any) -> bool:
    return isinstance(clause, _constants()[1])
