"""Shared look-ups for the clinical tests: demo patients by who attends them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.db import Database
from core.ids import encode_id
from models.patient import Patient
from models.user import User


async def user_id(db: Database, username: str) -> int:
    async with db.session() as session:
        return int((await session.execute(select(User.id).where(User.username == username))).scalar_one())


async def patients_of(db: Database, username: str) -> list[Patient]:
    """Demo patients attended by this user, in id order."""
    uid = await user_id(db, username)
    async with db.session() as session:
        rows = await session.execute(select(Patient).where(Patient.attending_physician_id == uid).order_by(Patient.id))
        return list(rows.scalars().all())


def gid(kind: str, pk: Any) -> str:
    return encode_id(kind, int(pk))
