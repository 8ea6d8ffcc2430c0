"""Health education: articles (Markdown rendered to sanitised HTML) and videos, and comments on them.

content.py: published content for everyone logged in, and editing (`capability:content.edit`: content of the
departments in the editor's data scope, or their own); comments.py: comments (plain text, moderated by the
keyword list) and their moderation (`capability:comments.moderate`); loaders.py: per-request loaders.
"""

from __future__ import annotations

from resolvers.education.comments import (
    CommentFilter,
    add_comment,
    comments_on,
    delete_comment,
    reply_to_comment,
    review_comment,
    search_comments,
)
from resolvers.education.content import (
    ArticleInput,
    VideoInput,
    check_url,
    create_content,
    delete_content,
    get_editorial,
    get_published,
    list_editorial,
    list_published,
    render_markdown,
    set_status,
    update_content,
)
from resolvers.education.loaders import EducationLoaders, education_loaders

__all__ = [
    "ArticleInput",
    "CommentFilter",
    "EducationLoaders",
    "VideoInput",
    "add_comment",
    "check_url",
    "comments_on",
    "create_content",
    "delete_comment",
    "delete_content",
    "education_loaders",
    "get_editorial",
    "get_published",
    "list_editorial",
    "list_published",
    "render_markdown",
    "reply_to_comment",
    "review_comment",
    "search_comments",
    "set_status",
    "update_content",
]
