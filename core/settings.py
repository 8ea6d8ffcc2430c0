"""All configuration, read from the environment or `.env` (pydantic-settings)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Known demo values: accepted in demo mode, refused in production mode.
DEMO_JWT_SECRET = "demo-only-signing-key-change-me-in-production-0000"
DEFAULT_DEMO_PASSWORD = "FollowUp#2026"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    app_mode: Literal["demo", "production"] = "demo"
    app_name: str = "Follow-up Platform API"
    database_url: str = "sqlite+aiosqlite:///./followup.db"
    database_pool_size: int = 10
    redis_url: str | None = None

    jwt_secret: SecretStr = SecretStr(DEMO_JWT_SECRET)
    access_token_minutes: int = Field(15, ge=1, le=1440)
    refresh_token_days: int = Field(7, ge=1, le=90)
    session_idle_minutes: int = Field(30, ge=1)

    demo_password: SecretStr = SecretStr(DEFAULT_DEMO_PASSWORD)

    password_min_length: int = Field(10, ge=8)
    login_max_failures: int = Field(5, ge=1)
    login_failure_window_minutes: int = Field(10, ge=1)
    login_lockout_minutes: int = Field(10, ge=1)
    totp_required_for_admin: bool = False
    totp_issuer: str = "FollowUp"

    trusted_proxies: Annotated[list[str], NoDecode] = []

    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_app_id: str = ""
    wechat_app_secret: SecretStr = SecretStr("")
    wechat_timeout_seconds: float = 5.0

    clinic_tz: str = "Asia/Shanghai"
    graphiql_enabled: bool = True
    max_request_bytes: int = 1_000_000
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    max_batch: int = 10
    log_level: str = "INFO"

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)
        return value

    @model_validator(mode="after")
    def _refuse_demo_secrets_in_production(self) -> Settings:
        if self.app_mode == "production":
            secret = self.jwt_secret.get_secret_value()
            if secret == DEMO_JWT_SECRET or len(secret) < 32:
                raise ValueError("production mode needs JWT_SECRET: at least 32 characters, not the demo key")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def trusted_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n, strict=False) for n in self.trusted_proxies]


@lru_cache
def get_settings() -> Settings:
    return Settings()
