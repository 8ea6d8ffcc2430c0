"""Articles (Markdown rendered to sanitised HTML) and videos.

Published content is for everyone logged in (reach `published`); drafts and archived items only for editors,
holders of `capability:content.edit`, who reach content of the departments in their data scope or content
they wrote (reach `edit`, policies/tables.py). Out of reach is NOT_FOUND.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from sqlalchemy import or_

from core.errors import bad_input
from core.timeutil import utcnow
from models.education import Article, ContentKind, PublicationStatus, Video
from resolvers.data.context import Context
from resolvers.data.pagination import Page
from resolvers.moderation import plain_text

Content = Article | Video
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip


def image_allowed(url: str, hosts: Collection[str]) -> bool:
    """An image a reader's device may load: https, from one of CONTENT_IMAGE_HOSTS (the hospital's own)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme == "https" and (parts.hostname or "").lower() in {host.lower() for host in hosts}


def render_markdown(body: str, image_hosts: Collection[str] = ()) -> str:
    """Markdown to HTML (raw HTML in the source is not passed through), then sanitised by nh3. An image from a
    host not in `image_hosts` loses its source (a tracking pixel would tell its host who read the article)."""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src" and not image_allowed(value, image_hosts):
            return None
        return value

    return nh3.clean(
        _MARKDOWN.render(body),
        tags=_ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}},
        url_schemes={"https", "http", "mailto"},
        link_rel="noopener noreferrer nofollow",
        attribute_filter=keep,
    )


# Characters no URL needs and an attribute or a client's markup could be broken out of with.
_URL_UNSAFE = re.compile(r"[\s\"'<>\\`{}|^\x00-\x1f\x7f]")


def check_url(value: str | None, field: str, *, required: bool = False) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise bad_input("Required", field)
        return None
    if _URL_UNSAFE.search(text):
        raise bad_input("A URL may not contain quotes, spaces, angle brackets or backslashes", field)
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.netloc or len(text) > 500:
        raise bad_input("An https:// URL of at most 500 characters", field)
    return text


def check_image_url(value: str | None, field: str, image_hosts: Collection[str]) -> str | None:
    """A cover image: a safe https URL on one of CONTENT_IMAGE_HOSTS."""
    url = check_url(value, field)
    if url is not None and not image_allowed(url, image_hosts):
        raise bad_input("Images come from the hospital's own hosts (CONTENT_IMAGE_HOSTS)", field)
    return url


def _keywords(values: Sequence[str] | None) -> str:
    cleaned = [plain_text(v, "keywords", limit=40).replace(",", " ") for v in values or () if v and v.strip()]
    joined = ",".join(dict.fromkeys(cleaned))
    if len(joined) > 500:
        raise bad_input("Keywords too long (500 characters together)", "keywords")
    return joined


def model_of(kind: ContentKind) -> type[Article] | type[Video]:
    return Article if kind is ContentKind.ARTICLE else Video


def like_pattern(term: str) -> str:
    return "%" + term.strip()[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ---- reads ---------------------------------------------------------------------------------------


async def list_published(
    ctx: Context, kind: ContentKind, *, search: str | None, first: int | None, after: str | None
) -> Page[Any]:
    model: Any = model_of(kind)
    statement = await ctx.data.select(model, purpose="published")
    if search and search.strip():
        condition = model.title.like(like_pattern(search), escape="\\")
        if model is Article:
            condition = or_(condition, Article.keywords.like(like_pattern(search), escape="\\"))
        statement = statement.where(condition)
    return await ctx.data.page(statement, keys=[model.id], first=first, after=after, descending=True)


async def get_published(ctx: Context, kind: ContentKind, content_id: int) -> Any:
    """A published item; reading it counts a view (a counter, not an audited write)."""
    model: Any = model_of(kind)
    row = await ctx.data.get(model, content_id, purpose="published")
    if await ctx.data.increment(model, content_id, "view_count", purpose="published"):
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
    model: Any = model_of(kind)
    statement = await ctx.data.select(model, purpose="edit")
    if status is not None:
        statement = statement.where(model.status == status)
    if search and search.strip():
        statement = statement.where(model.title.like(like_pattern(search), escape="\\"))
    return await ctx.data.page(statement, keys=[model.id], first=first, after=after, descending=True)


async def get_editorial(ctx: Context, kind: ContentKind, content_id: int) -> Any:
    return await ctx.data.get(model_of(kind), content_id, purpose="edit")


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


def _apply_article(row: Article, data: ArticleInput, *, creating: bool, image_hosts: Collection[str]) -> None:
    if creating or data.title is not None:
        row.title = plain_text(data.title, "title", limit=200)
    if data.summary is not None:
        row.summary = plain_text(data.summary, "summary", limit=500, required=False)
    if data.body_markdown is not None:
        if len(data.body_markdown) > 100_000:
            raise bad_input("At most 100000 characters", "bodyMarkdown")
        row.body_markdown = data.body_markdown
        row.body_html = render_markdown(data.body_markdown, image_hosts)
    if data.cover_url is not None:
        row.cover_url = check_image_url(data.cover_url, "coverUrl", image_hosts)
    if data.keywords is not None:
        row.keywords = _keywords(data.keywords)


def _apply_video(row: Video, data: VideoInput, *, creating: bool, image_hosts: Collection[str]) -> None:
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
        row.cover_url = check_image_url(data.cover_url, "coverUrl", image_hosts)


async def create_content(ctx: Context, kind: ContentKind, data: ArticleInput | VideoInput) -> Any:
    name = model_of(kind).__name__
    row: Any
    if isinstance(data, ArticleInput):
        row = Article(title="")
        _apply_article(row, data, creating=True, image_hosts=ctx.settings.content_image_hosts)
    else:
        row = Video(title="", video_url="")
        _apply_video(row, data, creating=True, image_hosts=ctx.settings.content_image_hosts)
    row.author_id = ctx.principal.user_id
    row.department_id = ctx.principal.department_id
    async with ctx.data.write(operation=f"create{name}", action="create", entity_type=name) as unit:
        unit.add(row)
        await unit.flush()
        unit.entity_id = str(row.id)
    return row


async def update_content(ctx: Context, kind: ContentKind, content_id: int, data: ArticleInput | VideoInput) -> Any:
    name = model_of(kind).__name__
    async with ctx.data.write(operation=f"update{name}", action="update", entity_type=name) as unit:
        row = await unit.get(model_of(kind), content_id)
        if isinstance(data, ArticleInput):
            _apply_article(row, data, creating=False, image_hosts=ctx.settings.content_image_hosts)
        else:
            _apply_video(row, data, creating=False, image_hosts=ctx.settings.content_image_hosts)
        row.updated_at = utcnow()
        unit.entity_id = str(row.id)
    return row


async def set_status(ctx: Context, kind: ContentKind, content_id: int, status: PublicationStatus) -> Any:
    name = model_of(kind).__name__
    operation = {"published": "publish", "archived": "archive", "draft": "unpublish"}[status.value] + name
    async with ctx.data.write(operation=operation, action="update", entity_type=name) as unit:
        row = await unit.get(model_of(kind), content_id)
        row.status = status.value
        if status is PublicationStatus.PUBLISHED and row.published_at is None:
            row.published_at = utcnow()
        row.updated_at = utcnow()
        unit.entity_id = str(row.id)
        unit.detail = {"status": status.value}
    return row


async def delete_content(ctx: Context, kind: ContentKind, content_id: int) -> bool:
    """Kept, marked deleted: gone from every list, its comments with it."""
    name = model_of(kind).__name__
    async with ctx.data.write(operation=f"delete{name}", action="delete", entity_type=name) as unit:
        row = await unit.get(model_of(kind), content_id)
        row.deleted_at = utcnow()
        unit.entity_id = str(row.id)
    return True
