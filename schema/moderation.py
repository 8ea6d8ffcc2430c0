"""Moderation: the status of user-written text, and the keyword list administrators keep."""

from __future__ import annotations

from datetime import datetime

import strawberry

from core.ids import decode_id, encode_id
from models.moderation import ContentStatus, ModerationAction, ModerationKeyword
from resolvers import moderation
from resolvers.data.context import Info
from schema.engine.connection import Connection, connection

ContentStatusEnum = strawberry.enum(ContentStatus, name="ContentStatus")
ModerationActionEnum = strawberry.enum(ModerationAction, name="ModerationAction")


@strawberry.type(name="ModerationKeyword")
class ModerationKeywordType:
    id: strawberry.ID
    keyword: str
    category: str
    action: ModerationActionEnum  # type: ignore[valid-type]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: ModerationKeyword) -> ModerationKeywordType:
        return cls(
            id=strawberry.ID(encode_id("ModerationKeyword", row.id)),  # type: ignore[arg-type]
            keyword=row.keyword,
            category=row.category,
            action=ModerationAction(row.action),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type
class ModerationQuery:
    @strawberry.field
    async def moderation_keywords(
        self, info: Info, search: str | None = None, first: int | None = 50, after: str | None = None
    ) -> Connection[ModerationKeywordType]:
        page = await moderation.list_keywords(info.context, search=search, first=first, after=after)
        return connection(page, ModerationKeywordType.from_row)


@strawberry.type
class ModerationMutation:
    @strawberry.mutation
    async def create_moderation_keyword(
        self,
        info: Info,
        keyword: str,
        action: ModerationActionEnum,  # type: ignore[valid-type]
        category: str = "",
    ) -> ModerationKeywordType:
        row = await moderation.create_keyword(info.context, keyword=keyword, category=category, action=action.value)
        return ModerationKeywordType.from_row(row)

    @strawberry.mutation
    async def update_moderation_keyword(
        self,
        info: Info,
        id: strawberry.ID,
        keyword: str | None = None,
        category: str | None = None,
        action: ModerationActionEnum | None = None,  # type: ignore[valid-type]
    ) -> ModerationKeywordType:
        row = await moderation.update_keyword(
            info.context,
            decode_id("ModerationKeyword", id),
            keyword=keyword,
            category=category,
            action=None if action is None else action.value,
        )
        return ModerationKeywordType.from_row(row)

    @strawberry.mutation
    async def delete_moderation_keyword(self, info: Info, id: strawberry.ID) -> bool:
        return await moderation.delete_keyword(info.context, decode_id("ModerationKeyword", id))
