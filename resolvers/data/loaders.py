"""Per-request DataLoaders: one batched query per (entity, key), nothing shared between users."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from strawberry.dataloader import DataLoader

from models.clinical import Diagnosis, ExamReport, FollowUp, TreatmentPlan, Visit
from models.organisation import Department, Position
from models.patient import Patient
from models.role import Role, UserRole
from models.user import User
from policies.voided import voided_hidden
from resolvers.data.projection import Columns

if TYPE_CHECKING:
    from resolvers.data.context import Context


# The order of a patient's records of each kind.
_ORDER: dict[Any, tuple[Any, ...]] = {
    Visit: (Visit.visit_date, Visit.id),
    Diagnosis: (Diagnosis.visit_id, Diagnosis.id),
    ExamReport: (ExamReport.exam_date, ExamReport.id),
    TreatmentPlan: (TreatmentPlan.id,),
    FollowUp: (FollowUp.due_date, FollowUp.id),
}


# Up to this many keys, a batch's IN list has one placeholder per key, in a statement kept per count: SQLAlchemy
# then renders no list per execution (an expanding parameter is rewritten into the SQL text every time, about a
# fifth of a small statement's CPU). Larger batches use one expanding parameter.
_LISTED = 128


@lru_cache(maxsize=2 * _LISTED)
def _key_names(name: str, count: int) -> tuple[str, ...]:
    return tuple(f"{name}_{i}" for i in range(count))


def _listed(count: int) -> int | None:
    """The count a statement is kept for, or None: an expanding parameter."""
    return count if 0 < count <= _LISTED else None


def _in_keys(column: Any, name: str, listed: int | None) -> Any:
    """`column IN (...)` for a batch of keys (`_listed`), with `_key_values` as its parameters."""
    if listed is None:
        return column.in_(bindparam(name, expanding=True))
    return column.in_([bindparam(key) for key in _key_names(name, listed)])


def _key_values(name: str, keys: Sequence[int], listed: int | None) -> dict[str, Any]:
    if listed is None:
        return {name: list(keys)}
    return dict(zip(_key_names(name, listed), keys, strict=True))


class Loaders:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.roles_by_user_id: DataLoader[int, list[Role]] = DataLoader(self._roles_by_user_id)
        self.department_by_id: DataLoader[int, Department | None] = DataLoader(self._by_id(Department))
        self.position_by_id: DataLoader[int, Position | None] = DataLoader(self._by_id(Position))
        self.user_name_by_id: DataLoader[int, str | None] = DataLoader(self._user_names)
        # A patient's records: each loader starts from the repository (ctx.data), so the table's reach applies
        # and batching can never reach a record the caller could not open directly; voided records come back
        # only to those who see them (policies/voided.py). These load every column; `of_patients` /
        # `diagnoses_of_visits` load the columns a selection needs (one loader per set).
        self._projected: dict[tuple[Any, Columns], DataLoader[int, list[Any]]] = {}
        self.visits_by_patient_id = self.of_patients(Visit, None)
        self.diagnoses_by_patient_id = self.of_patients(Diagnosis, None)
        self.exam_reports_by_patient_id = self.of_patients(ExamReport, None)
        self.plans_by_patient_id = self.of_patients(TreatmentPlan, None)
        self.follow_ups_by_patient_id = self.of_patients(FollowUp, None)
        self.diagnoses_by_visit_id = self.diagnoses_of_visits(None)
        self.patient_by_id: DataLoader[int, Patient | None] = DataLoader(self._patients)

    async def department_name(self, department_id: int | None) -> str | None:
        """A department's name (batched with the other departments the request loads); None for none."""
        if department_id is None:
            return None
        department = await self.department_by_id.load(department_id)
        return department.name if department else None

    async def _roles_by_user_id(self, user_ids: Sequence[int]) -> list[list[Role]]:
        async with self._ctx.reads() as session:
            rows = await session.execute(
                select(UserRole.user_id, Role)
                .join(Role, Role.id == UserRole.role_id)  # type: ignore[arg-type]
                .where(UserRole.user_id.in_(list(user_ids)))  # type: ignore[attr-defined]
                .order_by(Role.id)  # type: ignore[arg-type]
            )
        grouped: dict[int, list[Role]] = defaultdict(list)
        for user_id, role in rows.all():
            grouped[user_id].append(role)
        return [grouped.get(user_id, []) for user_id in user_ids]

    def _by_id(self, model: Any) -> Any:
        async def load(ids: Sequence[int]) -> list[Any]:
            async with self._ctx.reads() as session:
                rows = await session.execute(select(model).where(model.id.in_(list(ids))))
            found = {row.id: row for row in rows.scalars().all()}
            return [found.get(pk) for pk in ids]

        return load

    async def _user_names(self, ids: Sequence[int]) -> list[str | None]:
        async with self._ctx.reads() as session:
            rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(list(ids))))
        names = dict(rows.all())
        return [names.get(pk) for pk in ids]

    def of_patients(self, model: Any, columns: Columns) -> DataLoader[int, list[Any]]:
        """Rows of `model` by patient id (in `_ORDER`), with those columns (None: all)."""
        key = (model, columns)
        loader = self._projected.get(key)
        if loader is None:
            loader = self._projected[key] = DataLoader(self._by_patient(model, columns))
        return loader

    def diagnoses_of_visits(self, columns: Columns) -> DataLoader[int, list[Any]]:
        key = ("visit", columns)
        loader = self._projected.get(key)
        if loader is None:
            loader = self._projected[key] = DataLoader(self._diagnoses_by_visit(columns))
        return loader

    def _by_patient(self, model: Any, columns: Columns) -> Any:
        async def load(patient_ids: Sequence[int]) -> list[list[Any]]:
            data = self._ctx.data
            hidden = voided_hidden(model, await data.access())
            listed = _listed(len(patient_ids))
            # The reach (policies/tables.py) and the voided rule are in the statement, built once per shape.
            statement = await data.select(
                model,
                columns=True if columns is None else columns,
                key=("by_patient", bool(hidden), listed),
                then=lambda s: s.where(_in_keys(model.patient_id, "patient_id", listed), *hidden).order_by(
                    *_ORDER[model]
                ),
            )
            found = await data.rows(statement, _key_values("patient_id", patient_ids, listed))
            grouped: dict[int, list[Any]] = defaultdict(list)
            for row in data.rows_as(model, columns, found):
                grouped[row.patient_id].append(row)
            return [grouped.get(pid, []) for pid in patient_ids]

        return load

    def _diagnoses_by_visit(self, columns: Columns) -> Any:
        async def load(visit_ids: Sequence[int]) -> list[list[Any]]:
            data = self._ctx.data
            hidden = voided_hidden(Diagnosis, await data.access())
            listed = _listed(len(visit_ids))
            statement = await data.select(
                Diagnosis,
                columns=True if columns is None else columns,
                key=("by_visit", bool(hidden), listed),
                then=lambda s: s.where(_in_keys(Diagnosis.visit_id, "visit_id", listed), *hidden).order_by(
                    Diagnosis.id
                ),
            )
            found = await data.rows(statement, _key_values("visit_id", visit_ids, listed))
            grouped: dict[int, list[Any]] = defaultdict(list)
            for row in data.rows_as(Diagnosis, columns, found):
                grouped[row.visit_id].append(row)
            return [grouped.get(vid, []) for vid in visit_ids]

        return load

    async def _patients(self, ids: Sequence[int]) -> list[Patient | None]:
        data = self._ctx.data
        hidden = voided_hidden(Patient, await data.access())
        statement = await data.select(Patient, then=lambda s: s.where(Patient.id.in_(list(ids)), *hidden))
        found = {row.id: row for row in await data.objects(statement)}
        return [found.get(pk) for pk in ids]
