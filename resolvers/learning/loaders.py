"""Per request: each task's assignment counts by status, and tasks by id (an assignment's task), batched and
within the caller's reach."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from strawberry.dataloader import DataLoader

from models.learning import LearningAssignment, LearningTask
from resolvers.data.context import Context


class LearningLoaders:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.counts_by_task_id: DataLoader[int, dict[str, int]] = DataLoader(self._counts)
        self.task_by_id: DataLoader[int, LearningTask | None] = DataLoader(self._tasks)

    async def _counts(self, ids: Sequence[int]) -> list[dict[str, int]]:
        data = self._ctx.data
        statement = await data.select(
            LearningAssignment,
            LearningAssignment.task_id,
            LearningAssignment.status,
            func.count(),
            then=lambda s: s.where(LearningAssignment.task_id.in_(list(ids))).group_by(
                LearningAssignment.task_id, LearningAssignment.status
            ),
        )
        counts: dict[int, dict[str, int]] = {pk: {} for pk in ids}
        for task_id, status, count in await data.rows(statement):
            counts[task_id][status] = int(count)
        return [counts[pk] for pk in ids]

    async def _tasks(self, ids: Sequence[int]) -> list[LearningTask | None]:
        data = self._ctx.data
        statement = await data.select(LearningTask, then=lambda s: s.where(LearningTask.id.in_(list(ids))))
        found = {row.id: row for row in await data.objects(statement)}
        return [found.get(pk) for pk in ids]


def learning_loaders(ctx: Context) -> LearningLoaders:
    return ctx.loaders_of(LearningLoaders)
