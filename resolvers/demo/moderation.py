"""Demo data of moderation: a keyword that blocks, one that holds for review, one that is masked."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from models.moderation import ModerationAction, ModerationKeyword


async def seed_moderation(session: AsyncSession) -> None:
    session.add_all(
        [
            ModerationKeyword(keyword="代写病历", category="违规", action=ModerationAction.BLOCK.value),
            ModerationKeyword(keyword="祖传秘方", category="医疗误导", action=ModerationAction.HOLD.value),
            ModerationKeyword(keyword="骗子", category="辱骂", action=ModerationAction.REPLACE.value),
        ]
    )
