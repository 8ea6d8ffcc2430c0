"""Data scope: a principal's reach over departments, turned into SQL in one place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import ColumnElement, bindparam, false, true

from core.timeutil import utcnow
from models.role import DataScope


def subtree(department_id: int, parents: Mapping[int, int | None]) -> set[int]:
    """A department and every department below it."""
    children: dict[int | None, list[int]] = {}
    for dep, parent in parents.items():
        children.setdefault(parent, []).append(dep)
    found: set[int] = set()
    stack = [department_id]
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        stack.extend(children.get(current, []))
    return found


def department_ids_in_scope(
    scope: DataScope, department_id: int | None, parents: Mapping[int, int | None]
) -> set[int] | None:
    """None means every department; an empty set means none."""
    if scope is DataScope.ALL:
        return None
    if department_id is None:
        return set()
    if scope is DataScope.DEPARTMENT_AND_BELOW:
        return subtree(department_id, parents)
    if scope is DataScope.DEPARTMENT:
        return {department_id}
    return set()


def department_filter(column: ColumnElement[int | None], allowed: set[int] | None) -> ColumnElement[bool]:
    if allowed is None:
        return true()
    if not allowed:
        return false()
    return column.in_(sorted(allowed))


def widest_scope(scopes: Iterable[DataScope]) -> DataScope:
    return max(scopes, key=lambda scope: scope.rank, default=DataScope.SELF)


def _any(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """A row exists for this patient: a correlated `(SELECT 1 ... LIMIT 1) IS NOT NULL`.

    MariaDB flattens `patient.id IN (SELECT ...)` and plain EXISTS into a scan of the whole inner table
    (every visit, at 100k patients ~58 ms a statement); the LIMIT keeps the look-up per patient (~0.6 ms).
    """
    from sqlalchemy import literal, select

    return select(literal(1)).where(*conditions).limit(1).scalar_subquery().is_not(None)


@cache
def _scope_visit() -> Any:
    """One alias of `visit` for every scope clause: a fresh alias per request costs the ORM a new set of
    adapted columns each time (measured: about a sixth of a patient-list request's CPU)."""
    from sqlalchemy.orm import aliased

    from models.clinical import Visit

    return aliased(Visit, name="scope_visit")


@lru_cache(maxsize=1024)
def cached_patient_scope(
    user_id: int | None, scope: DataScope, allowed_departments: frozenset[int] | None, grants: bool = True
) -> ColumnElement[bool]:
    """`patient_scope` built once per distinct principal reach and shared by its requests.

    Building the condition from ORM attributes cost a fifth of a one-patient request's CPU. The clause
    holds no per-request value: the time that emergency grants are checked against is bound when each
    statement runs (a callable bind parameter), and everything else is in the cache key.
    """
    return patient_scope(
        user_id=user_id,
        scope=scope,
        allowed_departments=None if allowed_departments is None else set(allowed_departments),
        grants=grants,
    )


def patient_scope(
    *,
    user_id: int | None,
    scope: DataScope,
    allowed_departments: set[int] | None,
    grants: bool = True,
) -> ColumnElement[bool]:
    """Which patient rows a principal reaches, as one SQL condition on `patient`.

    ALL: every patient. Department scopes: patients of those departments. Everyone also reaches
    the patients they attend or have recorded a visit for, a patient record bound to their own
    (mini-program) account, and a patient they hold an unexpired emergency (break-the-glass) grant for
    (its expiry compared with the time each statement runs: a callable bind, so the clause can be kept).
    `grants=False`: the same reach without emergency grants (to tell what a write reached only through one).
    """
    from sqlalchemy import literal, or_

    from models.integrity import AccessGrant, GrantKind
    from models.patient import Patient

    if scope is DataScope.ALL:
        return true()
    if user_id is None:
        return false()
    seen = _scope_visit()
    own = [
        Patient.attending_physician_id == user_id,
        Patient.wechat_user_id == user_id,
        # An alias: the enclosing query may itself select from visit (and would swallow the correlation).
        # A visit counts only while it stands (not void) and if it was not recorded under an emergency grant:
        # access through a grant ends with the grant, whatever was written under it.
        _any(
            seen.patient_id == Patient.id,
            seen.physician_id == user_id,
            seen.voided_at.is_(None),
            seen.under_grant_id.is_(None),
        ),
    ]
    if grants:
        own.append(
            _any(
                AccessGrant.patient_id == Patient.id,
                AccessGrant.user_id == user_id,
                AccessGrant.kind == GrantKind.EMERGENCY.value,
                AccessGrant.expires_at > bindparam("scope_now", callable_=utcnow),
            )
        )
    if scope in (DataScope.DEPARTMENT_AND_BELOW, DataScope.DEPARTMENT) and allowed_departments:
        # First: MariaDB tries the terms of an OR in order and stops at the first true one, and the department
        # test is a column of the row itself, where the others are look-ups in visit and access_grant.
        # one bound value per department rather than a list SQLAlchemy expands into the SQL text at every execution
        departments = [literal(d, Patient.department_id.type) for d in sorted(allowed_departments)]
        own.insert(0, Patient.department_id.in_(departments))
    return or_(*own)
