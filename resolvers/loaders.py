"""Per-request DataLoaders: one batched query per (entity, key), nothing shared between users."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from strawberry.dataloader import DataLoader

from models.organisation import Department, Position
from models.user import Role, UserRole

if TYPE_CHECKING:
    from resolvers.context import Context


class Loaders:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.roles_by_user_id: DataLoader[int, list[Role]] = DataLoader(self._roles_by_user_id)
        self.department_by_id: DataLoader[int, Department | None] = DataLoader(self._by_id(Department))
        self.position_by_id: DataLoader[int, Position | None] = DataLoader(self._by_id(Position))

    async def _roles_by_user_id(self, user_ids: Sequence[int]) -> list[list[Role]]:
        async with self._ctx.db.session() as session:
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
            async with self._ctx.db.session() as session:
                rows = await session.execute(select(model).where(model.id.in_(list(ids))))
            found = {row.id: row for row in rows.scalars().all()}
            return [found.get(pk) for pk in ids]

        return load
