"""Per request: visible-comment counts per content item, and content titles for comment lists, batched and
within the caller's reach (comments shown to them; content they reach)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_
from strawberry.dataloader import DataLoader

from models.education import Comment, ContentKind
from models.moderation import ContentStatus
from resolvers.data.context import Context
from resolvers.education.content import model_of

ContentKey = tuple[str, int]  # (content kind, id)


class EducationLoaders:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.comment_count: DataLoader[ContentKey, int] = DataLoader(self._counts)
        self.title: DataLoader[ContentKey, str | None] = DataLoader(self._titles)

    async def _counts(self, keys: Sequence[ContentKey]) -> list[int]:
        data = self._ctx.data
        targets = or_(*(and_(Comment.target_kind == kind, Comment.target_id == pk) for kind, pk in set(keys)))
        statement = await data.select(
            Comment,
            Comment.target_kind,
            Comment.target_id,
            func.count(),
            purpose="shown",
            then=lambda s: s.where(Comment.status == ContentStatus.VISIBLE.value, targets).group_by(
                Comment.target_kind, Comment.target_id
            ),
        )
        counts = {(kind, target): int(n) for kind, target, n in await data.rows(statement)}
        return [counts.get(key, 0) for key in keys]

    async def _titles(self, keys: Sequence[ContentKey]) -> list[str | None]:
        data = self._ctx.data
        found: dict[ContentKey, str] = {}
        for kind in ContentKind:
            model: Any = model_of(kind)
            ids = [pk for k, pk in keys if k == kind.value]
            if ids:
                statement = (await data.select(model, model.id, model.title)).where(model.id.in_(ids))
                found.update({(kind.value, pk): title for pk, title in await data.rows(statement)})
        return [found.get(key) for key in keys]


def education_loaders(ctx: Context) -> EducationLoaders:
    return ctx.loaders_of(EducationLoaders)
