"""All configuration, read from the environment or `.env` (pydantic-settings)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core import crypto
from core.crypto import DEMO_DATA_KEY, DEMO_HASH_KEY

# Known demo values: accepted in demo mode, refused in production mode.
DEMO_JWT_SECRET = "demo-only-signing-key-change-me-in-production-0000"
DEFAULT_DEMO_PASSWORD = "FollowUp#2026"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    app_mode: Literal["demo", "production"] = "demo"
    app_name: str = "Follow-up Platform API"
    database_url: str = "sqlite+aiosqlite:///./followup.db"
    database_pool_size: int = 10
    database_ping_idle_seconds: float = Field(10.0, ge=0)  # ping a pooled connection idle this long (0: always)
    # a request waits this long for a pooled connection (all in use), then answers 503 UNAVAILABLE
    database_pool_timeout_seconds: float = Field(10.0, gt=0, le=300)
    # mysql+asyncmy only: prepared statements kept per pooled connection (binary protocol; 0: text only).
    # The server caps them all together (max_prepared_stmt_count, 16382 by default): connections x this.
    database_statement_cache: int = Field(32, ge=0, le=1024)
    redis_url: str | None = None

    jwt_secret: SecretStr = SecretStr(DEMO_JWT_SECRET)
    # Fernet keys (comma-separated, newest first: it encrypts, all decrypt) and the search-hash key.
    data_encryption_keys: SecretStr = SecretStr(DEMO_DATA_KEY)
    search_hash_key: SecretStr = SecretStr(DEMO_HASH_KEY)
    access_token_minutes: int = Field(15, ge=1, le=1440)
    refresh_token_days: int = Field(7, ge=1, le=90)
    session_idle_minutes: int = Field(30, ge=1)
    # a session verified this long ago is trusted again without the database (0: always ask it)
    session_cache_seconds: float = Field(1.0, ge=0, le=10)

    demo_password: SecretStr = SecretStr(DEFAULT_DEMO_PASSWORD)

    password_min_length: int = Field(10, ge=8)
    login_max_failures: int = Field(5, ge=1)
    login_failure_window_minutes: int = Field(10, ge=1)
    login_lockout_minutes: int = Field(10, ge=1)
    totp_required_for_admin: bool = False
    # Seconds between background passes that link new audit events into the chain (writes also wake it);
    # 0: no background task, each write seals inline before its response.
    audit_seal_interval_seconds: float = Field(default=2.0, ge=0, le=3600)
    totp_issuer: str = "FollowUp"

    trusted_proxies: Annotated[list[str], NoDecode] = []
    # Networks that may scrape /metrics without a token (an admin's token always may).
    metrics_networks: Annotated[list[str], NoDecode] = []

    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_app_id: str = ""
    wechat_app_secret: SecretStr = SecretStr("")
    wechat_timeout_seconds: float = 5.0

    clinic_tz: str = "Asia/Shanghai"
    break_glass_minutes: int = Field(60, ge=5, le=1440)
    # Searches or duplicate checks on a value the caller sees only masked (a chief's identity numbers, a
    # physician's phones): each one (every alias and batch item, hits and misses) is recorded, and no more
    # than this many are answered per account in 24 hours (policies/decision.py `match_mode`).
    masked_lookups_per_day: int = Field(20, ge=0, le=1000)
    graphiql_enabled: bool = True
    max_request_bytes: int = 1_000_000
    # A GraphQL document's own size (comments and strings count): longer ones are refused before parsing.
    max_document_bytes: int = Field(100_000, ge=1_000)
    # Documents longer than this run but are never kept in the parse and prepared-document caches.
    cache_document_bytes: int = Field(20_000, ge=100)
    max_sockets_per_user: int = Field(8, ge=1)  # open websocket connections per account, per instance
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    max_batch: int = 10
    log_level: str = "INFO"
    gc_freeze: bool = True  # after start-up, keep the objects built so far out of the collector's walks
    gc_threshold0: int = Field(20_000, ge=0)  # young-generation threshold (Python's default: 700; 0 keeps it)

    # ---- HTTP transport: persisted queries, cost, introspection, rate limits, CORS ----
    apq_cache_size: int = Field(2000, ge=1)  # automatic persisted queries kept in process (LRU)
    apq_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)  # how long Redis keeps an automatic registration
    prepared_cache_size: int = Field(1000, ge=1)  # parsed+validated persisted documents kept per schema
    compiled_completion: bool = True  # object values completed by compiled walks (schema/engine/completion.py)
    projection: bool = True  # load only the columns a selection shows (core/speedups.py)
    prefetch: bool = True  # a list's nested records loaded up front
    statement_reuse: bool = True  # hot statements built once and kept
    max_query_cost: int = Field(200_000, ge=1)  # fields, list fields multiplied by their page size
    default_page_size: int = Field(20, ge=1)  # what a list field costs without first/last
    disable_introspection_for_non_admin: bool = False
    rate_limit_enabled: bool = True
    rate_limit_window_seconds: int = Field(60, ge=1)
    rate_limit_per_user: int = Field(600, ge=1)  # requests per window per logged-in user
    rate_limit_per_ip: int = Field(1200, ge=1)  # requests per window per client address
    rate_limit_login_per_ip: int = Field(20, ge=1)  # login / refreshToken / wechatLogin per window per address
    cors_origins: Annotated[list[str], NoDecode] = []  # console origins allowed cross-origin

    # ---- operations: the scheduler, request figures (resolvers/operations/) ----
    scheduler_enabled: bool = True  # this instance fires scheduled jobs (each firing runs once, on one instance)
    job_heartbeat_seconds: float = Field(15.0, gt=0, le=600)  # a running run's liveness mark; stale runs looked for
    job_stale_seconds: float = Field(120.0, gt=0)  # a running run unmarked this long is failed by whoever finds it
    job_misfire_grace_seconds: int = Field(60, ge=1)  # a firing later than this is missed (skipped or caught up)
    follow_up_missed_after_days: int = Field(14, ge=0, le=365)  # a scheduled follow-up this far past due: missed
    # ---- appointments (resolvers/appointment/) ----
    appointment_cancel_hours: int = Field(24, ge=0, le=720)  # a patient cancels online until this long before
    schedule_import_max_bytes: int = Field(5_000_000, ge=1_000)  # largest schedule file (multipart upload)
    schedule_import_max_rows: int = Field(20_000, ge=1)  # most rows in one schedule file
    audit_archive_enabled: bool = False  # the audit.archive job moves old events to JSON Lines files
    audit_archive_after_days: int = Field(365, ge=30)  # events older than this are archived
    audit_archive_dir: str = "./audit-archive"
    figures_flush_seconds: float = Field(10.0, gt=0, le=300)  # request figures buffered this long, then written

    # ---- production: overload, deadlines, shutdown (schema/engine/admission.py, shutdown.py) ----
    # GraphQL and FHIR requests one process works on at once; more are answered at once with 503 OVERLOADED and
    # Retry-After (and /readyz says `saturated`) instead of queueing until clients give up.
    max_requests_in_flight: int = Field(256, ge=1, le=10_000)  # running + waiting for a slot
    # Of those, only as many run at once as their latency allows (schema/engine/limiter.py): the number falls to what
    # ran while requests take more than CONCURRENCY_LATENCY_TOLERANCE times their unloaded time, never below
    # CONCURRENCY_MIN.
    concurrency_adaptive: bool = True
    concurrency_min: int = Field(2, ge=1, le=10_000)
    concurrency_latency_tolerance: float = Field(2.0, ge=1.0, le=100.0)
    # Under overload (demand beyond what the process serves: requests in flight keep growing) the requests accepted keep
    # their latency instead: at most this times their unloaded time, down to one request at a time (1.0: more than one
    # runs at once only while that costs them nothing).
    concurrency_overload_tolerance: float = Field(1.0, ge=1.0, le=100.0)
    # A request finding every slot taken waits for one at most this long, in order of arrival (a burst drains) ...
    admission_queue_seconds: float = Field(1.0, ge=0, le=60)
    # ... or, for ADMISSION_QUEUE_SECONDS after overload was seen (the requests in flight kept growing, a request waited
    # ADMISSION_QUEUE_SECONDS, or one was shed at MAX_REQUESTS_IN_FLIGHT), this long, newest first.
    admission_queue_target_seconds: float = Field(0.002, ge=0, le=60)
    # Under overload, requests go into the app at most this many times the rate it answers them (a token bucket); the
    # others are answered 503 OVERLOADED by the HTTP protocol itself, before uvicorn sets them up for the app
    # (schema/engine/door.py: about half the CPU of a refusal by the app, on the core the accepted requests need).
    # 0: every request goes in, and those beyond the slots are shed after their wait.
    admission_door_pace: float = Field(2.0, ge=0, le=100)
    # A GraphQL request still running after this long is cancelled and answered 504 TIMEOUT, unless a write of it
    # has begun to commit (then it runs to its answer: no client hears an error for a write that was kept).
    request_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    # SIGTERM: /readyz fails at once; requests are still served this long (the balancer's checks notice), then the
    # port closes, requests in flight finish, websockets close with 1001, figures and seals are written.
    shutdown_drain_seconds: float = Field(0.0, ge=0, le=300)
    shutdown_grace_seconds: float = Field(40.0, gt=0, le=3600)  # from SIGTERM to exit, at most (drain included)
    # an idle keep-alive connection is closed after this long: longer than a balancer's own idle timeout (nginx's
    # upstream keepalive_timeout and cloud balancers: 60 s), or it reuses a connection the server is closing
    http_keep_alive_seconds: int = Field(75, ge=1, le=3600)

    # ---- FHIR (resolvers/fhir/): local code and identifier systems, bulk data exports ----
    # The installation's namespace for its own code systems, identifier systems and bundle entry URLs: set once,
    # before the first export leaves the house, and never changed (other systems keep these URIs).
    fhir_system_base: str = "https://followup.example.org/fhir"
    fhir_export_dir: str = "./fhir-exports"  # NDJSON files of bulk exports (shared storage with several instances)
    fhir_export_keep_hours: int = Field(24, ge=1, le=24 * 90)  # a finished export's files are deleted after this
    fhir_export_batch: int = Field(200, ge=1, le=5000)  # patients per step; progress is saved after each step
    fhir_export_file_max_resources: int = Field(100_000, ge=1, le=10_000_000)  # a type's resources per NDJSON file
    fhir_export_validate: bool = False  # validate every exported resource against the R4B models (fhir.resources)

    # Hosts (https) that articles' images and content covers may come from: the hospital's own. An image from
    # anywhere else is dropped from the rendered article (a tracking pixel would tell its host who read what).
    content_image_hosts: Annotated[list[str], NoDecode] = []
    # Bytes of uploads one account may keep; unattached uploads are removed by the uploads.purge_unattached job.
    upload_quota_bytes: int = Field(20 * 1024 * 1024, ge=0)

    @field_validator("trusted_proxies", "cors_origins", "metrics_networks", "content_image_hosts", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", "metrics_networks")
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
            if DEMO_DATA_KEY in self.data_keys or self.search_hash_key.get_secret_value() == DEMO_HASH_KEY:
                raise ValueError("production mode needs DATA_ENCRYPTION_KEYS and SEARCH_HASH_KEY of your own")
        return self

    @property
    def data_keys(self) -> list[str]:
        return [key.strip() for key in self.data_encryption_keys.get_secret_value().split(",") if key.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def metrics_networks_parsed(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n, strict=False) for n in self.metrics_networks]

    @property
    def trusted_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n, strict=False) for n in self.trusted_proxies]


@lru_cache
def get_settings() -> Settings:
    return Settings()


def _settings_keys() -> tuple[list[str], str]:
    settings = get_settings()
    return settings.data_keys, settings.search_hash_key.get_secret_value()


crypto.default_keys(_settings_keys)
