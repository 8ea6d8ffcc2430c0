"""Health education: articles, videos and the comments on them."""

from __future__ import annotations

from datetime import datetime

import strawberry

from core.errors import not_found
from core.ids import decode_id, decode_optional_id, encode_id
from models import education as m
from models.moderation import ContentStatus
from resolvers import education
from resolvers.data.context import Info
from schema.engine.connection import Connection, connection
from schema.moderation import ContentStatusEnum

PublicationStatusEnum = strawberry.enum(m.PublicationStatus, name="PublicationStatus")
ContentKindEnum = strawberry.enum(m.ContentKind, name="ContentKind")

_TYPE_NAMES = {m.ContentKind.ARTICLE: "Article", m.ContentKind.VIDEO: "Video"}


def decode_content_id(value: strawberry.ID) -> tuple[m.ContentKind, int]:
    """An article's or a video's id."""
    for kind, name in _TYPE_NAMES.items():
        try:
            return kind, decode_id(name, value)
        except Exception:  # noqa: S112 - not this type: try the next
            continue
    raise not_found("Content")


@strawberry.type(name="Comment", description="Plain text: clients show it as text, never as HTML.")
class CommentType:
    id: strawberry.ID
    content_id: strawberry.ID
    content_kind: ContentKindEnum  # type: ignore[valid-type]
    parent_id: strawberry.ID | None
    commenter_id: strawberry.ID
    text: str
    status: ContentStatusEnum  # type: ignore[valid-type]
    moderation_reason: str | None
    created_at: datetime
    reviewed_at: datetime | None
    _row: strawberry.Private[m.Comment]

    @classmethod
    def from_row(cls, row: m.Comment) -> CommentType:
        kind = m.ContentKind(row.target_kind)
        return cls(
            id=strawberry.ID(encode_id("Comment", row.id)),  # type: ignore[arg-type]
            content_id=strawberry.ID(encode_id(_TYPE_NAMES[kind], row.target_id)),
            content_kind=kind,
            parent_id=None if row.parent_id is None else strawberry.ID(encode_id("Comment", row.parent_id)),
            commenter_id=strawberry.ID(encode_id("User", row.commenter_id)),
            text=row.body,
            status=ContentStatus(row.status),
            moderation_reason=row.moderation_reason,
            created_at=row.created_at,
            reviewed_at=row.reviewed_at,
            _row=row,
        )

    @strawberry.field(
        description="The writer's name as the comment showed it when written (a later change relabels nothing)."
    )
    async def commenter_name(self, info: Info) -> str | None:
        if self._row.commenter_name is not None:
            return self._row.commenter_name
        return await info.context.loaders.user_name_by_id.load(self._row.commenter_id)

    @strawberry.field(
        description="The writer's staff title, from their role when they wrote (null for patients): never from a name."
    )
    def commenter_title(self) -> str | None:
        return self._row.commenter_title

    @strawberry.field
    async def content_title(self, info: Info) -> str | None:
        return await education.education_loaders(info.context).title.load((self._row.target_kind, self._row.target_id))


def _comment_count(info: Info, kind: m.ContentKind, pk: int) -> object:
    return education.education_loaders(info.context).comment_count.load((kind.value, pk))


@strawberry.type(name="Article")
class ArticleType:
    id: strawberry.ID
    title: str
    summary: str
    body_html: str = strawberry.field(description="Rendered from Markdown and sanitised (nh3).")
    body_markdown: str
    cover_url: str | None
    keywords: list[str]
    status: PublicationStatusEnum  # type: ignore[valid-type]
    published_at: datetime | None
    view_count: int
    created_at: datetime
    updated_at: datetime
    _row: strawberry.Private[m.Article]

    @classmethod
    def from_row(cls, row: m.Article) -> ArticleType:
        return cls(
            id=strawberry.ID(encode_id("Article", row.id)),  # type: ignore[arg-type]
            title=row.title,
            summary=row.summary,
            body_html=row.body_html,
            body_markdown=row.body_markdown,
            cover_url=row.cover_url,
            keywords=[k for k in row.keywords.split(",") if k],
            status=m.PublicationStatus(row.status),
            published_at=row.published_at,
            view_count=row.view_count,
            created_at=row.created_at,
            updated_at=row.updated_at,
            _row=row,
        )

    @strawberry.field
    async def author_name(self, info: Info) -> str | None:
        author = self._row.author_id
        return None if author is None else await info.context.loaders.user_name_by_id.load(author)

    @strawberry.field(description="Visible comments.")
    async def comment_count(self, info: Info) -> int:
        return await _comment_count(info, m.ContentKind.ARTICLE, self._row.id)  # type: ignore[arg-type, no-any-return, misc]

    @strawberry.field(description="Visible comments (and your own held ones), oldest first.")
    async def comments(self, info: Info, first: int | None = 20, after: str | None = None) -> Connection[CommentType]:
        page = await education.comments_on(
            info.context,
            m.ContentKind.ARTICLE,
            self._row.id,
            first=first,
            after=after,  # type: ignore[arg-type]
        )
        return connection(page, CommentType.from_row)


@strawberry.type(name="Video")
class VideoType:
    id: strawberry.ID
    title: str
    description: str
    video_url: str
    duration_seconds: int
    cover_url: str | None
    status: PublicationStatusEnum  # type: ignore[valid-type]
    published_at: datetime | None
    view_count: int
    created_at: datetime
    updated_at: datetime
    _row: strawberry.Private[m.Video]

    @classmethod
    def from_row(cls, row: m.Video) -> VideoType:
        return cls(
            id=strawberry.ID(encode_id("Video", row.id)),  # type: ignore[arg-type]
            title=row.title,
            description=row.description,
            video_url=row.video_url,
            duration_seconds=row.duration_seconds,
            cover_url=row.cover_url,
            status=m.PublicationStatus(row.status),
            published_at=row.published_at,
            view_count=row.view_count,
            created_at=row.created_at,
            updated_at=row.updated_at,
            _row=row,
        )

    @strawberry.field
    async def author_name(self, info: Info) -> str | None:
        author = self._row.author_id
        return None if author is None else await info.context.loaders.user_name_by_id.load(author)

    @strawberry.field(description="Visible comments.")
    async def comment_count(self, info: Info) -> int:
        return await _comment_count(info, m.ContentKind.VIDEO, self._row.id)  # type: ignore[arg-type, no-any-return, misc]

    @strawberry.field(description="Visible comments (and your own held ones), oldest first.")
    async def comments(self, info: Info, first: int | None = 20, after: str | None = None) -> Connection[CommentType]:
        page = await education.comments_on(
            info.context,
            m.ContentKind.VIDEO,
            self._row.id,
            first=first,
            after=after,  # type: ignore[arg-type]
        )
        return connection(page, CommentType.from_row)


@strawberry.input
class ArticleInput:
    title: str | None = None
    summary: str | None = None
    body_markdown: str | None = None
    cover_url: str | None = strawberry.field(default=None, description="https:// only")
    keywords: list[str] | None = None

    def to_data(self) -> education.ArticleInput:
        return education.ArticleInput(
            title=self.title,
            summary=self.summary,
            body_markdown=self.body_markdown,
            cover_url=self.cover_url,
            keywords=self.keywords,
        )


@strawberry.input
class VideoInput:
    title: str | None = None
    description: str | None = None
    video_url: str | None = strawberry.field(default=None, description="https:// only")
    duration_seconds: int | None = None
    cover_url: str | None = strawberry.field(default=None, description="https:// only")

    def to_data(self) -> education.VideoInput:
        return education.VideoInput(
            title=self.title,
            description=self.description,
            video_url=self.video_url,
            duration_seconds=self.duration_seconds,
            cover_url=self.cover_url,
        )


@strawberry.input
class CommentFilter:
    text: str | None = None
    commenter_id: strawberry.ID | None = None
    commenter_name: str | None = None
    content_id: strawberry.ID | None = None
    content_title: str | None = None
    from_: datetime | None = strawberry.field(default=None, name="from")
    to: datetime | None = None
    status: ContentStatusEnum | None = None  # type: ignore[valid-type]


_A, _V = m.ContentKind.ARTICLE, m.ContentKind.VIDEO


@strawberry.type
class EducationQuery:
    @strawberry.field(description="Published articles, newest first.")
    async def articles(
        self, info: Info, search: str | None = None, first: int | None = 20, after: str | None = None
    ) -> Connection[ArticleType]:
        page = await education.list_published(info.context, _A, search=search, first=first, after=after)
        return connection(page, ArticleType.from_row)

    @strawberry.field(description="A published article (counts a view).")
    async def article(self, info: Info, id: strawberry.ID) -> ArticleType:
        return ArticleType.from_row(await education.get_published(info.context, _A, decode_id("Article", id)))

    @strawberry.field(description="Published videos, newest first.")
    async def videos(
        self, info: Info, search: str | None = None, first: int | None = 20, after: str | None = None
    ) -> Connection[VideoType]:
        page = await education.list_published(info.context, _V, search=search, first=first, after=after)
        return connection(page, VideoType.from_row)

    @strawberry.field(description="A published video (counts a view).")
    async def video(self, info: Info, id: strawberry.ID) -> VideoType:
        return VideoType.from_row(await education.get_published(info.context, _V, decode_id("Video", id)))

    @strawberry.field(description="Articles you may edit, in any status (drafts included).")
    async def editorial_articles(
        self,
        info: Info,
        status: PublicationStatusEnum | None = None,  # type: ignore[valid-type]
        search: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[ArticleType]:
        page = await education.list_editorial(
            info.context, _A, status=None if status is None else status.value, search=search, first=first, after=after
        )
        return connection(page, ArticleType.from_row)

    @strawberry.field
    async def editorial_article(self, info: Info, id: strawberry.ID) -> ArticleType:
        return ArticleType.from_row(await education.get_editorial(info.context, _A, decode_id("Article", id)))

    @strawberry.field(description="Videos you may edit, in any status (drafts included).")
    async def editorial_videos(
        self,
        info: Info,
        status: PublicationStatusEnum | None = None,  # type: ignore[valid-type]
        search: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[VideoType]:
        page = await education.list_editorial(
            info.context, _V, status=None if status is None else status.value, search=search, first=first, after=after
        )
        return connection(page, VideoType.from_row)

    @strawberry.field
    async def editorial_video(self, info: Info, id: strawberry.ID) -> VideoType:
        return VideoType.from_row(await education.get_editorial(info.context, _V, decode_id("Video", id)))

    @strawberry.field(
        description="Comments on content in your data scope, newest first; status HELD is the review queue."
    )
    async def comments(
        self, info: Info, filter: CommentFilter | None = None, first: int | None = 20, after: str | None = None
    ) -> Connection[CommentType]:
        given = filter or CommentFilter()
        kind, target = decode_content_id(given.content_id) if given.content_id is not None else (None, None)
        filters = education.CommentFilter(
            text=given.text,
            commenter_id=decode_optional_id("User", given.commenter_id),
            commenter_name=given.commenter_name,
            content_kind=kind,
            content_id=target,
            content_title=given.content_title,
            since=given.from_,
            until=given.to,
            status=None if given.status is None else given.status.value,
        )
        page = await education.search_comments(info.context, filters, first=first, after=after)
        return connection(page, CommentType.from_row)


@strawberry.type
class EducationMutation:
    @strawberry.mutation(description="A draft article, in your department.")
    async def create_article(self, info: Info, input: ArticleInput) -> ArticleType:
        return ArticleType.from_row(await education.create_content(info.context, _A, input.to_data()))

    @strawberry.mutation
    async def update_article(self, info: Info, id: strawberry.ID, input: ArticleInput) -> ArticleType:
        row = await education.update_content(info.context, _A, decode_id("Article", id), input.to_data())
        return ArticleType.from_row(row)

    @strawberry.mutation(description="Set an article's status (PUBLISHED makes it visible to patients).")
    async def set_article_status(
        self,
        info: Info,
        id: strawberry.ID,
        status: PublicationStatusEnum,  # type: ignore[valid-type]
    ) -> ArticleType:
        row = await education.set_status(info.context, _A, decode_id("Article", id), m.PublicationStatus(status.value))
        return ArticleType.from_row(row)

    @strawberry.mutation(description="Delete an article (kept, marked deleted).")
    async def delete_article(self, info: Info, id: strawberry.ID) -> bool:
        return await education.delete_content(info.context, _A, decode_id("Article", id))

    @strawberry.mutation(description="A draft video, in your department.")
    async def create_video(self, info: Info, input: VideoInput) -> VideoType:
        return VideoType.from_row(await education.create_content(info.context, _V, input.to_data()))

    @strawberry.mutation
    async def update_video(self, info: Info, id: strawberry.ID, input: VideoInput) -> VideoType:
        return VideoType.from_row(
            await education.update_content(info.context, _V, decode_id("Video", id), input.to_data())
        )

    @strawberry.mutation(description="Set a video's status (PUBLISHED makes it visible to patients).")
    async def set_video_status(
        self,
        info: Info,
        id: strawberry.ID,
        status: PublicationStatusEnum,  # type: ignore[valid-type]
    ) -> VideoType:
        row = await education.set_status(info.context, _V, decode_id("Video", id), m.PublicationStatus(status.value))
        return VideoType.from_row(row)

    @strawberry.mutation(description="Delete a video (kept, marked deleted).")
    async def delete_video(self, info: Info, id: strawberry.ID) -> bool:
        return await education.delete_content(info.context, _V, decode_id("Video", id))

    @strawberry.mutation(
        description="Comment on a published article or video; a blocked word refuses it, a held one waits for review."
    )
    async def add_comment(self, info: Info, content_id: strawberry.ID, text: str) -> CommentType:
        kind, pk = decode_content_id(content_id)
        return CommentType.from_row(await education.add_comment(info.context, kind, pk, text))

    @strawberry.mutation(description="Reply to a visible comment.")
    async def reply_to_comment(self, info: Info, comment_id: strawberry.ID, text: str) -> CommentType:
        row = await education.reply_to_comment(info.context, decode_id("Comment", comment_id), text)
        return CommentType.from_row(row)

    @strawberry.mutation(description="Approve (show) or reject (hide) a held comment.")
    async def review_comment(self, info: Info, id: strawberry.ID, approve: bool) -> CommentType:
        row = await education.review_comment(info.context, decode_id("Comment", id), approve=approve)
        return CommentType.from_row(row)

    @strawberry.mutation(description="Hide a comment (kept).")
    async def delete_comment(self, info: Info, id: strawberry.ID) -> CommentType:
        return CommentType.from_row(await education.delete_comment(info.context, decode_id("Comment", id)))
