"""Health education: articles (Markdown rendered to sanitised HTML) and videos, and comments on them.

Published content is for everyone logged in; drafts and archived items only for editors (the policy
grants the editorial fields), and an editor changes only content of departments in their data scope
or content they wrote. Comments are plain text, moderated by the keyword list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from core.errors import bad_input, not_found
from core.timeutil import utcnow
from models.education import Article, Comment, ContentKind, PublicationStatus, Video
from models.moderation import ContentStatus
from models.user import User
from policies.scope import department_filter
from resolvers.audit.unit import write_unit
from resolvers.data.context import Context
from resolvers.data.pagination import Page, paginate
from resolvers.data.tree import scoped_department_ids
from resolvers.moderation import moderate, plain_text

Content = Article | Video
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip


def render_markdown(body: str) -> str:
    """Markdown to HTML (raw HTML in the source is not passed through), then sanitised by nh3."""
    return nh3.clean(
        _MARKDOWN.render(body),
        tags=_ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}},
        url_schemes={"https", "http", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def check_url(value: str | None, field: str, *, required: bool = False) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise bad_input("Required", field)
        return None
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.netloc or len(text) > 500:
        raise bad_input("An https:// URL of at most 500 characters", field)
    return text


def _keywords(values: Sequence[str] | None) -> str:
    cleaned = [plain_text(v, "keywords", limit=40).replace(",", " ") for v in values or () if v and v.strip()]
    joined = ",".join(dict.fromkeys(cleaned))
    if len(joined) > 500:
        raise bad_input("Keywords too long (500 characters together)", "keywords")
    return joined


def _model(kind: ContentKind) -> type[Article] | type[Video]:
    return Article if kind is ContentKind.ARTICLE else Video


def _published(model: Any) -> ColumnElement[bool]:
    return and_(model.status == PublicationStatus.PUBLISHED.value, model.deleted_at.is_(None))


async def editable_clause(ctx: Context, model: Any) -> ColumnElement[bool]:
    """Content an editor reaches: departments in their data scope, or written by them."""
    allowed = await scoped_department_ids(ctx)
    return and_(
        model.deleted_at.is_(None),
        or_(department_filter(model.department_id, allowed), model.author_id == ctx.principal.user_id),
    )


def _like(term: str) -> str:
    return "%" + term.strip()[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ---- reads ---------------------------------------------------------------------------------------


async def list_published(
    ctx: Context, kind: ContentKind, *, search: str | None, first: int | None, after: str | None
) -> Page[Any]:
    model: Any = _model(kind)
    statement = select(model).where(_published(model))
    if search and search.strip():
        condition = model.title.like(_like(search), escape="\\")
        if model is Article:
            condition = or_(condition, Article.keywords.like(_like(search), escape="\\"))
        statement = statement.where(condition)
    return await paginate(
        ctx.reads, statement, keys=[model.id], key_of=lambda r: [r.id], first=first, after=after, descending=True
    )


async def get_published(ctx: Context, kind: ContentKind, content_id: int) -> Any:
    """A published item; reading it counts a view (a counter, not an audited write)."""
    model: Any = _model(kind)
    async with ctx.db.transaction() as session:
        row = (
            await session.execute(select(model).where(model.id == content_id, _published(model)))
        ).scalar_one_or_none()
        if row is None:
            raise not_found(model.__name__)
        await session.execute(update(model).where(model.id == content_id).values(view_count=model.view_count + 1))
    row.view_count += 1
    return row


async def list_editorial(
    ctx: Context,
    kind: ContentKind,
    *,
    status: str | None,
    search: str | None,
    first: int | None,
    after: str | None,
) -> Page[Any]:
    model: Any = _model(kind)
    statement = select(model).where(await editable_clause(ctx, model))
    if status is not None:
        statement = statement.where(model.status == status)
    if search and search.strip():
        statement = statement.where(model.title.like(_like(search), escape="\\"))
    return await paginate(
        ctx.reads, statement, keys=[model.id], key_of=lambda r: [r.id], first=first, after=after, descending=True
    )


async def get_editorial(ctx: Context, kind: ContentKind, content_id: int, session: AsyncSession | None = None) -> Any:
    model: Any = _model(kind)
    statement = select(model).where(model.id == content_id, await editable_clause(ctx, model))
    if session is None:
        async with ctx.db.session() as own:
            row = (await own.execute(statement)).scalar_one_or_none()
    else:
        row = (await session.execute(statement)).scalar_one_or_none()
    if row is None:
        raise not_found(model.__name__)
    return row


# ---- writes --------------------------------------------------------------------------------------


@dataclass
class ArticleInput:
    title: str | None = None
    summary: str | None = None
    body_markdown: str | None = None
    cover_url: str | None = None
    keywords: Sequence[str] | None = None


@dataclass
class VideoInput:
    title: str | None = None
    description: str | None = None
    video_url: str | None = None
    duration_seconds: int | None = None
    cover_url: str | None = None


def _apply_article(row: Article, data: ArticleInput, *, creating: bool) -> None:
    if creating or data.title is not None:
        row.title = plain_text(data.title, "title", limit=200)
    if data.summary is not None:
        row.summary = plain_text(data.summary, "summary", limit=500, required=False)
    if data.body_markdown is not None:
        if len(data.body_markdown) > 100_000:
            raise bad_input("At most 100000 characters", "bodyMarkdown")
        row.body_markdown = data.body_markdown
        row.body_html = render_markdown(data.body_markdown)
    if data.cover_url is not None:
        row.cover_url = check_url(data.cover_url, "coverUrl")
    if data.keywords is not None:
        row.keywords = _keywords(data.keywords)


def _apply_video(row: Video, data: VideoInput, *, creating: bool) -> None:
    if creating or data.title is not None:
        row.title = plain_text(data.title, "title", limit=200)
    if data.description is not None:
        row.description = plain_text(data.description, "description", limit=5000, required=False)
    if creating or data.video_url is not None:
        row.video_url = check_url(data.video_url, "videoUrl", required=True) or ""
    if data.duration_seconds is not None:
        if not 0 <= data.duration_seconds <= 24 * 3600:
            raise bad_input("Between 0 and 86400 seconds", "durationSeconds")
        row.duration_seconds = data.duration_seconds
    if data.cover_url is not None:
        row.cover_url = check_url(data.cover_url, "coverUrl")


async def create_content(ctx: Context, kind: ContentKind, data: ArticleInput | VideoInput) -> Any:
    name = _model(kind).__name__
    row: Any
    if isinstance(data, ArticleInput):
        row = Article(title="")
        _apply_article(row, data, creating=True)
    else:
        row = Video(title="", video_url="")
        _apply_video(row, data, creating=True)
    row.author_id = ctx.principal.user_id
    row.department_id = ctx.principal.department_id
    async with write_unit(ctx, operation=f"create{name}", action="create", entity_type=name) as unit:
        unit.session.add(row)
        await unit.session.flush()
        unit.entity_id = str(row.id)
    return row


async def update_content(ctx: Context, kind: ContentKind, content_id: int, data: ArticleInput | VideoInput) -> Any:
    name = _model(kind).__name__
    async with write_unit(ctx, operation=f"update{name}", action="update", entity_type=name) as unit:
        row = await get_editorial(ctx, kind, content_id, unit.session)
        if isinstance(data, ArticleInput):
            _apply_article(row, data, creating=False)
        else:
            _apply_video(row, data, creating=False)
        row.updated_at = utcnow()
        unit.entity_id = str(row.id)
    return row


async def set_status(ctx: Context, kind: ContentKind, content_id: int, status: PublicationStatus) -> Any:
    name = _model(kind).__name__
    operation = {"published": "publish", "archived": "archive", "draft": "unpublish"}[status.value] + name
    async with write_unit(ctx, operation=operation, action="update", entity_type=name) as unit:
        row = await get_editorial(ctx, kind, content_id, unit.session)
        row.status = status.value
        if status is PublicationStatus.PUBLISHED and row.published_at is None:
            row.published_at = utcnow()
        row.updated_at = utcnow()
        unit.entity_id = str(row.id)
        unit.detail = {"status": status.value}
    return row


async def delete_content(ctx: Context, kind: ContentKind, content_id: int) -> bool:
    """Kept, marked deleted: gone from every list, its comments with it."""
    name = _model(kind).__name__
    async with write_unit(ctx, operation=f"delete{name}", action="delete", entity_type=name) as unit:
        row = await get_editorial(ctx, kind, content_id, unit.session)
        row.deleted_at = utcnow()
        unit.entity_id = str(row.id)
    return True


# ---- comments ------------------------------------------------------------------------------------

COMMENT_LIMIT = 1000


async def _published_target(session: AsyncSession, kind: ContentKind, target_id: int) -> None:
    model: Any = _model(kind)
    found = await session.execute(select(model.id).where(model.id == target_id, _published(model)))
    if found.first() is None:
        raise not_found(model.__name__)


async def add_comment(ctx: Context, kind: ContentKind, target_id: int, text: str) -> Comment:
    body = plain_text(text, "text", limit=COMMENT_LIMIT)
    moderated = await moderate(ctx, body, "text")
    async with write_unit(ctx, operation="addComment", action="create", entity_type="Comment") as unit:
        await _published_target(unit.session, kind, target_id)
        row = Comment(
            target_kind=kind.value,
            target_id=target_id,
            commenter_id=ctx.principal.user_id,  # type: ignore[arg-type]
            body=moderated.text,
            status=moderated.status.value,
            moderation_reason=moderated.reason,
        )
        unit.session.add(row)
        await unit.session.flush()
        unit.entity_id = str(row.id)
        unit.detail = {"status": row.status}
    return row


async def comment_clause(ctx: Context) -> ColumnElement[bool]:
    """Comments a moderator reaches: on content of departments in their data scope."""
    allowed = await scoped_department_ids(ctx)
    if allowed is None:
        return Comment.id.is_not(None)
    return or_(
        and_(
            Comment.target_kind == ContentKind.ARTICLE.value,
            Comment.target_id.in_(select(Article.id).where(department_filter(Article.department_id, allowed))),
        ),
        and_(
            Comment.target_kind == ContentKind.VIDEO.value,
            Comment.target_id.in_(select(Video.id).where(department_filter(Video.department_id, allowed))),
        ),
    )


async def _moderated_comment(ctx: Context, session: AsyncSession, comment_id: int) -> Comment:
    row = (
        await session.execute(select(Comment).where(Comment.id == comment_id, await comment_clause(ctx)))
    ).scalar_one_or_none()
    if row is None:
        raise not_found("Comment")
    return row


async def reply_to_comment(ctx: Context, comment_id: int, text: str) -> Comment:
    body = plain_text(text, "text", limit=COMMENT_LIMIT)
    moderated = await moderate(ctx, body, "text")
    async with write_unit(ctx, operation="replyToComment", action="create", entity_type="Comment") as unit:
        parent = (
            await unit.session.execute(
                select(Comment).where(Comment.id == comment_id, Comment.status == ContentStatus.VISIBLE.value)
            )
        ).scalar_one_or_none()
        if parent is None:
            raise not_found("Comment")
        await _published_target(unit.session, ContentKind(parent.target_kind), parent.target_id)
        row = Comment(
            target_kind=parent.target_kind,
            target_id=parent.target_id,
            parent_id=parent.id,
            commenter_id=ctx.principal.user_id,  # type: ignore[arg-type]
            body=moderated.text,
            status=moderated.status.value,
            moderation_reason=moderated.reason,
        )
        unit.session.add(row)
        await unit.session.flush()
        unit.entity_id = str(row.id)
    return row


async def review_comment(ctx: Context, comment_id: int, *, approve: bool) -> Comment:
    async with write_unit(ctx, operation="reviewComment", action="update", entity_type="Comment") as unit:
        row = await _moderated_comment(ctx, unit.session, comment_id)
        if row.status != ContentStatus.HELD.value:
            raise bad_input("Only a held comment is reviewed", "id")
        row.status = (ContentStatus.VISIBLE if approve else ContentStatus.HIDDEN).value
        row.reviewed_by_id, row.reviewed_at = ctx.principal.user_id, utcnow()
        unit.entity_id = str(row.id)
        unit.detail = {"approved": approve}
    return row


async def delete_comment(ctx: Context, comment_id: int) -> Comment:
    """Hidden (kept): no longer shown under the content."""
    async with write_unit(ctx, operation="deleteComment", action="delete", entity_type="Comment") as unit:
        row = await _moderated_comment(ctx, unit.session, comment_id)
        row.status = ContentStatus.HIDDEN.value
        row.reviewed_by_id, row.reviewed_at = ctx.principal.user_id, utcnow()
        unit.entity_id = str(row.id)
    return row


def _shown_comments(ctx: Context) -> ColumnElement[bool]:
    """Under the content: visible comments, and the reader's own held ones (marked held)."""
    return or_(
        Comment.status == ContentStatus.VISIBLE.value,
        and_(Comment.status == ContentStatus.HELD.value, Comment.commenter_id == ctx.principal.user_id),
    )


async def comments_on(
    ctx: Context, kind: ContentKind, target_id: int, *, first: int | None, after: str | None
) -> Page[Comment]:
    statement = select(Comment).where(
        Comment.target_kind == kind.value, Comment.target_id == target_id, _shown_comments(ctx)
    )
    return await paginate(ctx.reads, statement, keys=[Comment.id], key_of=lambda r: [r.id], first=first, after=after)


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
    statement = select(Comment).where(await comment_clause(ctx))
    if filters.text and filters.text.strip():
        statement = statement.where(Comment.body.like(_like(filters.text), escape="\\"))
    if filters.commenter_id is not None:
        statement = statement.where(Comment.commenter_id == filters.commenter_id)
    if filters.commenter_name and filters.commenter_name.strip():
        statement = statement.where(
            Comment.commenter_id.in_(
                select(User.id).where(User.display_name.like(_like(filters.commenter_name), escape="\\"))
            )
        )
    if filters.content_kind is not None:
        statement = statement.where(Comment.target_kind == filters.content_kind.value)
        if filters.content_id is not None:
            statement = statement.where(Comment.target_id == filters.content_id)
    if filters.content_title and filters.content_title.strip():
        pattern = _like(filters.content_title)
        statement = statement.where(
            or_(
                and_(
                    Comment.target_kind == ContentKind.ARTICLE.value,
                    Comment.target_id.in_(select(Article.id).where(Article.title.like(pattern, escape="\\"))),
                ),
                and_(
                    Comment.target_kind == ContentKind.VIDEO.value,
                    Comment.target_id.in_(select(Video.id).where(Video.title.like(pattern, escape="\\"))),
                ),
            )
        )
    if filters.since is not None:
        statement = statement.where(Comment.created_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(Comment.created_at < filters.until)
    if filters.status is not None:
        statement = statement.where(Comment.status == filters.status)
    return await paginate(
        ctx.reads, statement, keys=[Comment.id], key_of=lambda r: [r.id], first=first, after=after, descending=True
    )


class EducationLoaders:
    """Per request: visible-comment counts per content item, and content titles for comment lists."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.comment_count: DataLoader[tuple[str, int], int] = DataLoader(self._counts)
        self.title: DataLoader[tuple[str, int], str | None] = DataLoader(self._titles)

    async def _counts(self, keys: Sequence[tuple[str, int]]) -> list[int]:
        async with self._ctx.db.session() as session:
            rows = await session.execute(
                select(Comment.target_kind, Comment.target_id, func.count())
                .where(
                    Comment.status == ContentStatus.VISIBLE.value,
                    or_(*(and_(Comment.target_kind == k, Comment.target_id == i) for k, i in set(keys))),
                )
                .group_by(Comment.target_kind, Comment.target_id)
            )
        counts = {(kind, target): int(n) for kind, target, n in rows.all()}
        return [counts.get(key, 0) for key in keys]

    async def _titles(self, keys: Sequence[tuple[str, int]]) -> list[str | None]:
        found: dict[tuple[str, int], str] = {}
        async with self._ctx.db.session() as session:
            for kind in ContentKind:
                model: Any = _model(kind)
                ids = [i for k, i in keys if k == kind.value]
                if ids:
                    rows = await session.execute(select(model.id, model.title).where(model.id.in_(ids)))
                    found.update({(kind.value, pk): title for pk, title in rows.all()})
        return [found.get(key) for key in keys]


def education_loaders(ctx: Context) -> EducationLoaders:
    loaders = ctx.loaders_of(EducationLoaders)
    return loaders  # type: ignore[no-any-return]


# ---- demo data (this modules) ------------------------------------------------------------


async def seed_demo_engagement(session: AsyncSession, *, today: Any) -> None:
    """Keywords, education content with comments, a consultation and a learning task, days in the past."""
    from datetime import timedelta

    from core.ids import encode_id
    from models.consultation import Conversation, Message, MessageKind
    from models.learning import LearningAssignment, LearningTask
    from models.moderation import ModerationKeyword
    from models.organisation import Department
    from models.patient import Patient
    from resolvers.learning import assign_open_tasks

    users: dict[str, int] = dict((await session.execute(select(User.username, User.id))).all())  # type: ignore[arg-type]
    crs = (await session.execute(select(Department.id).where(Department.code == "CRS"))).scalar_one()
    earlier = utcnow() - timedelta(days=7)
    session.add_all(
        [
            ModerationKeyword(keyword="代写病历", category="违规", action="block"),
            ModerationKeyword(keyword="祖传秘方", category="医疗误导", action="hold"),
            ModerationKeyword(keyword="骗子", category="辱骂", action="replace"),
        ]
    )
    body = "## 便血的常见原因\n\n- **痔疮**：鲜红色，便后滴血\n- 肛裂：伴排便疼痛\n\n出现黑便或持续便血请及时就诊。"
    published = Article(
        title="便血的常见原因",
        summary="鲜血、暗红与黑便分别提示什么",
        body_markdown=body,
        body_html=render_markdown(body),
        keywords="便血,肛肠",
        status=PublicationStatus.PUBLISHED.value,
        author_id=users["chief"],
        department_id=crs,
        published_at=earlier,
        view_count=12,
        created_at=earlier,
        updated_at=earlier,
    )
    draft = Article(
        title="结肠镜检查前的准备",
        body_markdown="检查前一天低渣饮食……",
        body_html=render_markdown("检查前一天低渣饮食……"),
        author_id=users["chief"],
        department_id=crs,
    )
    video = Video(
        title="坐浴的正确方法",
        description="温水坐浴的水温、时长与注意事项",
        video_url="https://media.example.org/demo/sitz-bath.mp4",
        duration_seconds=150,
        status=PublicationStatus.PUBLISHED.value,
        author_id=users["chief"],
        department_id=crs,
        published_at=earlier,
        created_at=earlier,
        updated_at=earlier,
    )
    session.add_all([published, draft, video])
    await session.flush()
    question = Comment(
        target_kind=ContentKind.VIDEO.value,
        target_id=video.id,  # type: ignore[arg-type]
        commenter_id=users["patient"],
        body="请问坐浴水温多少合适？",
        created_at=earlier,
    )
    session.add(question)
    await session.flush()
    session.add(
        Comment(
            target_kind=ContentKind.VIDEO.value,
            target_id=video.id,  # type: ignore[arg-type]
            parent_id=question.id,
            commenter_id=users["chief"],
            body="40℃左右，每次10-15分钟。",
            created_at=earlier + timedelta(hours=1),
        )
    )
    patient = (
        await session.execute(select(Patient).where(Patient.wechat_user_id == users["patient"]))
    ).scalar_one_or_none()
    if patient is not None:  # seeded without demo patients (the benchmark data set): no conversation
        conversation = Conversation(
            patient_id=patient.id,  # type: ignore[arg-type]
            patient_user_id=users["patient"],
            physician_id=users["chief"],
            department_id=crs,
            created_at=earlier,
            last_message_at=earlier,
        )
        session.add(conversation)
        await session.flush()
        for offset, (sender, recipient, text) in enumerate(
            [
                (users["patient"], users["chief"], "张主任您好，复查结果出来了，需要再来门诊吗？"),
                (users["chief"], users["patient"], "结果正常，三个月后复查即可。"),
            ]
        ):
            message = Message(
                conversation_id=conversation.id,  # type: ignore[arg-type]
                sender_id=sender,
                recipient_id=recipient,
                kind=MessageKind.USER.value,
                body=text,
                sent_at=earlier + timedelta(minutes=30 * offset),
                read_at=earlier + timedelta(minutes=30 * offset + 5) if offset == 0 else None,
            )
            session.add(message)
            await session.flush()
            conversation.last_message_id, conversation.last_message_at = message.id, message.sent_at  # type: ignore[assignment]
    task = LearningTask(
        title="结直肠癌诊疗规范学习",
        description="学习规范并完成科室自测",
        materials=[
            {"kind": "article", "ref": encode_id("Article", published.id), "title": published.title},
            {"kind": "link", "ref": "https://example.org/crc-guideline.pdf", "title": "规范全文"},
        ],
        department_id=crs,
        due_date=today + timedelta(days=30),
        author_id=users["deptadmin"],
    )
    session.add(task)
    await session.flush()
    await assign_open_tasks(session, today=today, assignee_roles=("physician", "chief_physician"), department_id=crs)
    await session.execute(
        update(LearningAssignment)
        .where(LearningAssignment.task_id == task.id, LearningAssignment.user_id == users["physician"])
        .values(status="in_progress", progress=50)
    )
