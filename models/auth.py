"""Sessions, refresh tokens (rotated, one family per session) and the login log."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, big_primary_key, created_at_field, instant_field


class AuthSession(SQLModel, table=True):
    __tablename__ = "auth_session"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: str = Field(primary_key=True, max_length=32)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    client: str = Field(default="console", max_length=32)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=255)
    created_at: datetime = created_at_field()
    last_seen_at: datetime = created_at_field()
    expires_at: datetime = created_at_field()
    revoked_at: datetime | None = instant_field()
    revoke_reason: str | None = Field(default=None, max_length=64)


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_token"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    token_hash: str = Field(primary_key=True, max_length=64)
    session_id: str = Field(foreign_key="auth_session.id", index=True, max_length=32)
    created_at: datetime = created_at_field()
    used_at: datetime | None = instant_field()


class LoginLog(SQLModel, table=True):
    __tablename__ = "login_log"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = big_primary_key()
    username: str = Field(default="", max_length=128, index=True)
    user_id: int | None = Field(default=None, index=True)
    method: str = Field(default="password", max_length=16)
    success: bool = False
    reason: str = Field(default="", max_length=64)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=255)
    created_at: datetime = created_at_field()


class LoginGate(SQLModel, table=True):
    """One row per account name and client address: taken (row-locked by an upsert) while an attempt is counted,
    so counting it and reading the lockout are one step however many attempts arrive at once
    (resolvers/audit/logins.py `claim_attempt`)."""

    __tablename__ = "login_gate"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    username: str = Field(primary_key=True, max_length=128)
    ip: str = Field(primary_key=True, max_length=64)
    attempts: int = 0  # every attempt ever counted here (the lockout itself reads the login log)
    updated_at: datetime = created_at_field()
