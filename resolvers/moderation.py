"""The moderation keyword list and the check every comment and message passes before it is stored.

A keyword blocks (the write is refused with BAD_USER_INPUT naming the reason), holds (stored, shown to
nobody but its author and the reviewers until approved) or is replaced with asterisks. Text is kept as
plain text: nothing here or anywhere renders it as HTML.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from core.errors import bad_input
from core.timeutil import utcnow
from core.validation import INVISIBLE, choice, folded
from models.moderation import ContentStatus, ModerationAction, ModerationKeyword
from resolvers.data.context import Context
from resolvers.data.pagination import Page

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalise(value: str) -> str:
    """What is stored: NFC, without control characters (Chinese full-width punctuation stays as typed)."""
    return _CONTROL.sub("", unicodedata.normalize("NFC", value)).strip()


def _in_place(keyword: str) -> re.Pattern[str]:
    """The keyword as written in the text, invisible characters allowed between its letters, any case."""
    gap = f"[{INVISIBLE}]*"
    return re.compile(gap.join(re.escape(ch) for ch in keyword), flags=re.IGNORECASE)


def plain_text(value: str | None, field: str, *, limit: int, required: bool = True) -> str:
    text = normalise(value or "")
    if required and not text:
        raise bad_input("Required", field)
    if len(text) > limit:
        raise bad_input(f"At most {limit} characters", field)
    return text


@dataclass
class Moderated:
    text: str
    status: ContentStatus
    reason: str | None = None


async def _keywords(ctx: Context) -> list[ModerationKeyword]:
    statement = await ctx.data.select(ModerationKeyword, then=lambda s: s.order_by(ModerationKeyword.id))
    return await ctx.data.objects(statement)


async def moderate(ctx: Context, text: str, field: str) -> Moderated:
    """Apply the keyword list: block raises, hold marks for review, replace masks with asterisks.

    Matching ignores case, invisible characters and full-width disguises (core/validation.py `folded`); the
    text is stored as written. A replace keyword that can only be found in
    disguise (so cannot be masked in place) holds the text for review instead."""
    held: list[str] = []
    for keyword in await _keywords(ctx):
        if keyword.keyword not in folded(text):
            continue
        label = f"“{keyword.keyword}”" + (f" ({keyword.category})" if keyword.category else "")
        if keyword.action == ModerationAction.BLOCK.value:
            raise bad_input(f"Refused: the text contains the blocked word {label}", field)
        if keyword.action == ModerationAction.REPLACE.value:
            stars = "*" * len(keyword.keyword)
            text = _in_place(keyword.keyword).sub(stars, text)
            if keyword.keyword not in folded(text):
                continue
        held.append(label)
    if held:
        return Moderated(text, ContentStatus.HELD, ("Held for review: " + ", ".join(held))[:200])
    return Moderated(text, ContentStatus.VISIBLE)


# ---- the keyword list (administrators) -----------------------------------------------------------


def _keyword_text(value: str) -> str:
    return folded(plain_text(value, "keyword", limit=100))


async def list_keywords(
    ctx: Context, *, search: str | None, first: int | None, after: str | None
) -> Page[ModerationKeyword]:
    statement = await ctx.data.select(ModerationKeyword)
    if search and search.strip():
        term = search.strip().casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(ModerationKeyword.keyword.like(f"%{term}%", escape="\\"))
    return await ctx.data.page(statement, keys=[ModerationKeyword.id], first=first, after=after)


async def create_keyword(ctx: Context, *, keyword: str, category: str, action: str) -> ModerationKeyword:
    chosen = choice(ModerationAction, action, "action")
    row = ModerationKeyword(
        keyword=_keyword_text(keyword),
        category=plain_text(category, "category", limit=50, required=False),
        action=chosen.value,
        created_by_id=ctx.principal.user_id,
    )
    async with ctx.data.write(
        operation="createModerationKeyword",
        action="create",
        entity_type="ModerationKeyword",
        conflict_message="That keyword is already listed",
    ) as unit:
        unit.add(row)
        await unit.flush()
        unit.entity_id = str(row.id)
        unit.detail = {"keyword": row.keyword, "action": row.action}
    return row


async def update_keyword(
    ctx: Context, keyword_id: int, *, keyword: str | None, category: str | None, action: str | None
) -> ModerationKeyword:
    async with ctx.data.write(
        operation="updateModerationKeyword",
        action="update",
        entity_type="ModerationKeyword",
        conflict_message="That keyword is already listed",
    ) as unit:
        row = await unit.get(ModerationKeyword, keyword_id)
        if keyword is not None:
            row.keyword = _keyword_text(keyword)
        if category is not None:
            row.category = plain_text(category, "category", limit=50, required=False)
        if action is not None:
            row.action = choice(ModerationAction, action, "action").value
        row.updated_at = utcnow()
        unit.entity_id = str(row.id)
        unit.detail = {"keyword": row.keyword, "action": row.action}
    return row


async def delete_keyword(ctx: Context, keyword_id: int) -> bool:
    async with ctx.data.write(
        operation="deleteModerationKeyword", action="delete", entity_type="ModerationKeyword"
    ) as unit:
        row = await unit.get(ModerationKeyword, keyword_id)
        unit.entity_id = str(row.id)
        unit.detail = {"keyword": row.keyword, "action": row.action}
        await unit.delete(row)
    return True
