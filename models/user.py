"""Accounts (staff and mini-program users)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, created_at_field, updated_at_field


class UserStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    PENDING = "pending"


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    # Normalised (NFKC, lower case); NULL for a WeChat user who has not asked for a console account.
    username: str | None = Field(default=None, max_length=64, unique=True)
    display_name: str = Field(default="", max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    position_id: int | None = Field(default=None, foreign_key="position.id")
    status: str = Field(default=UserStatus.ACTIVE.value, max_length=16, index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    must_change_password: bool = False
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_enabled: bool = False
    # The last time step whose code was accepted: a code works once, not again within its window.
    totp_last_step: int | None = Field(default=None, sa_type=BigInteger)
    wechat_openid: str | None = Field(default=None, max_length=128, unique=True)
    is_demo: bool = False
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
