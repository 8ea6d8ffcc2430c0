"""Comments on published articles and videos: plain text, moderated by the keyword list.

Under a piece of content a reader sees the visible comments and their own held ones (reach `shown`);
holders of `capability:comments.moderate` search, review and hide the comments on content of the departments
in their data scope (reach `moderate`, policies/tables.py). Out of reach is NOT_FOUND.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_

from core.errors import bad_input, not_found
from core.timeutil import utcnow
from models.education import Article, Comment, ContentKind, Video
from models.moderation import ContentStatus
from models.role import Role
from models.user import User
from policies.roles import BUILTIN_ROLES, PATIENT_ROLE
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context
from resolvers.data.pagination import Page
from resolvers.education.content import like_pattern, model_of
from resolvers.moderation import moderate, plain_text

COMMENT_LIMIT = 1000


async def _published_target(unit: WriteUnit, kind: ContentKind, target_id: int) -> None:
    model: Any = model_of(kind)
    if await unit.find(model, target_id, purpose="published") is None:
        raise not_found(model.__name__)


async def _as_shown(ctx: Context, unit: WriteUnit) -> tuple[str | None, str | None]:
    """The writer's name as it is now, and the title of their staff role (None for a patient): kept with the
    comment, so it keeps showing what it showed when written."""
    me = await unit.find(User, ctx.principal.user_id or 0)
    name = me.display_name if me is not None else None
    staff = [key for key in ctx.principal.role_keys if key != PATIENT_ROLE]
    if not staff:
        return name, None
    roles = await ctx.data.objects(await ctx.data.select(Role, then=lambda s: s.where(Role.key.in_(staff))))
    order = {key: index for index, (key, _, _) in enumerate(BUILTIN_ROLES)}
    roles.sort(key=lambda role: (order.get(role.key, len(order)), role.name))
    return name, (roles[0].name[:100] if roles else None)


async def add_comment(ctx: Context, kind: ContentKind, target_id: int, text: str) -> Comment:
    body = plain_text(text, "text", limit=COMMENT_LIMIT)
    moderated = await moderate(ctx, body, "text")
    async with ctx.data.write(operation="addComment", action="create", entity_type="Comment") as unit:
        await _published_target(unit, kind, target_id)
        row = Comment(
            target_kind=kind.value,
            target_id=target_id,
            commenter_id=ctx.principal.user_id,  # type: ignore[arg-type]
            body=moderated.text,
            status=moderated.status.value,
            moderation_reason=moderated.reason,
        )
        row.commenter_name, row.commenter_title = await _as_shown(ctx, unit)
        unit.add(row)
        await unit.flush()
        unit.entity_id = str(row.id)
        unit.detail = {"status": row.status}
    return row


async def reply_to_comment(ctx: Context, comment_id: int, text: str) -> Comment:
    body = plain_text(text, "text", limit=COMMENT_LIMIT)
    moderated = await moderate(ctx, body, "text")
    async with ctx.data.write(operation="replyToComment", action="create", entity_type="Comment") as unit:
        parent = await unit.first(
            await ctx.data.select(
                Comment,
                purpose="shown",
                then=lambda s: s.where(Comment.id == comment_id, Comment.status == ContentStatus.VISIBLE.value),
            )
        )
        if parent is None:
            raise not_found("Comment")
        await _published_target(unit, ContentKind(parent.target_kind), parent.target_id)
        row = Comment(
            target_kind=parent.target_kind,
            target_id=parent.target_id,
            parent_id=parent.id,
            commenter_id=ctx.principal.user_id,  # type: ignore[arg-type]
            body=moderated.text,
            status=moderated.status.value,
            moderation_reason=moderated.reason,
        )
        row.commenter_name, row.commenter_title = await _as_shown(ctx, unit)
        unit.add(row)
        await unit.flush()
        unit.entity_id = str(row.id)
    return row


async def review_comment(ctx: Context, comment_id: int, *, approve: bool) -> Comment:
    async with ctx.data.write(operation="reviewComment", action="update", entity_type="Comment") as unit:
        row = await unit.get(Comment, comment_id)
        if row.status != ContentStatus.HELD.value:
            raise bad_input("Only a held comment is reviewed", "id")
        row.status = (ContentStatus.VISIBLE if approve else ContentStatus.HIDDEN).value
        row.reviewed_by_id, row.reviewed_at = ctx.principal.user_id, utcnow()
        unit.entity_id = str(row.id)
        unit.detail = {"approved": approve}
    return row  # type: ignore[no-any-return]


async def delete_comment(ctx: Context, comment_id: int) -> Comment:
    """Hidden (kept): no longer shown under the content."""
    async with ctx.data.write(operation="deleteComment", action="delete", entity_type="Comment") as unit:
        row = await unit.get(Comment, comment_id)
        row.status = ContentStatus.HIDDEN.value
        row.reviewed_by_id, row.reviewed_at = ctx.principal.user_id, utcnow()
        unit.entity_id = str(row.id)
    return row  # type: ignore[no-any-return]


async def comments_on(
    ctx: Context, kind: ContentKind, target_id: int, *, first: int | None, after: str | None
) -> Page[Comment]:
    """Under the content: visible comments, and the reader's own held ones (marked held), oldest first."""
    statement = await ctx.data.select(
        Comment,
        purpose="shown",
        then=lambda s: s.where(Comment.target_kind == kind.value, Comment.target_id == target_id),
    )
    return await ctx.data.page(statement, keys=[Comment.id], first=first, after=after)


@dataclass
class CommentFilter:
    text: str | None = None
    commenter_id: int | None = None
    commenter_name: str | None = None
    content_kind: ContentKind | None = None
    content_id: int | None = None
    content_title: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None


async def search_comments(
    ctx: Context, filters: CommentFilter, *, first: int | None, after: str | None
) -> Page[Comment]:
    """The comments the caller moderates, newest first (status HELD: the review queue)."""
    data = ctx.data
    statement = await data.select(Comment, purpose="moderate")
    if filters.text and filters.text.strip():
        statement = statement.where(Comment.body.like(like_pattern(filters.text), escape="\\"))
    if filters.commenter_id is not None:
        await data.reach_or_not_found(User, filters.commenter_id, purpose="commenter", what="Commenter")
        statement = statement.where(Comment.commenter_id == filters.commenter_id)
    if filters.commenter_name and filters.commenter_name.strip():
        pattern = like_pattern(filters.commenter_name)
        commenters = await data.select(
            User, User.id, purpose="name", then=lambda s: s.where(User.display_name.like(pattern, escape="\\"))
        )
        statement = statement.where(Comment.commenter_id.in_(commenters))
    if filters.content_kind is not None:
        statement = statement.where(Comment.target_kind == filters.content_kind.value)
        if filters.content_id is not None:
            content = Article if filters.content_kind is ContentKind.ARTICLE else Video
            await data.reach_or_not_found(content, filters.content_id, purpose="moderate")
            statement = statement.where(Comment.target_id == filters.content_id)
    if filters.content_title and filters.content_title.strip():
        title = like_pattern(filters.content_title)
        articles = await data.select(
            Article, Article.id, then=lambda s: s.where(Article.title.like(title, escape="\\"))
        )
        videos = await data.select(Video, Video.id, then=lambda s: s.where(Video.title.like(title, escape="\\")))
        statement = statement.where(
            or_(
                and_(Comment.target_kind == ContentKind.ARTICLE.value, Comment.target_id.in_(articles)),
                and_(Comment.target_kind == ContentKind.VIDEO.value, Comment.target_id.in_(videos)),
            )
        )
    if filters.since is not None:
        statement = statement.where(Comment.created_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(Comment.created_at < filters.until)
    if filters.status is not None:
        statement = statement.where(Comment.status == filters.status)
    return await data.page(statement, keys=[Comment.id], first=first, after=after, descending=True)
