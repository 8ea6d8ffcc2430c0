"""Persisted queries: automatic (Apollo APQ) for the console, trusted documents for the mini-program.

* Automatic persisted queries (`extensions.persistedQuery = {version: 1, sha256Hash}`): a hash alone runs
  the stored document or fails with `PersistedQueryNotFound` (`PERSISTED_QUERY_NOT_FOUND`); hash and query
  together are checked (a mismatch is `BAD_USER_INPUT`), run, and stored once they parse and validate.
  Storage is an in-process LRU, shared through Redis when `REDIS_URL` is set.
* Trusted documents: each first-party client's operations, built into a manifest from
  `clients/<client>/*.graphql` and loaded into the `persisted_document` table by
  `server.py load-documents`. A session held to them (every mini-program session, and every session of an
  account holding the patient role however it logged in: policies/roles.py held_to_trusted_documents) may run
  only the mini-program's trusted documents (`PERSISTED_QUERY_REQUIRED` otherwise). Anyone may run a trusted document by
  hash (the anonymous `wechatLogin` comes that way).
* A persisted document is parsed and validated once per role schema and kept (`PreparedDocuments`,
  which also stands in for strawberry's ParserCache and ValidationCache for ordinary queries).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, parse
from sqlalchemy import delete, select
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from core.db import Database
from core.errors import ErrorCode
from core.lru import LRU
from core.settings import Settings
from models.persisted import PersistedDocument
from resolvers.auth import MINI_PROGRAM
from resolvers.data.context import Principal, RequestState
from schema.engine.sizes import APQ_BYTES, PARSED_BYTES, PREPARED_BYTES, node_weight, text_weight

log = logging.getLogger("followup.persisted")

_HASH = re.compile(r"^[0-9a-f]{64}$")
REDIS_PREFIX = "followup:apq:"


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def operation_name_of(document: str) -> str | None:
    names = [
        definition.name.value
        for definition in parse(document).definitions
        if isinstance(definition, OperationDefinitionNode) and definition.name is not None
    ]
    return names[0] if len(names) == 1 else None


class AutomaticStore:
    """APQ registrations: a process-local LRU in front of Redis (when configured)."""

    def __init__(self, settings: Settings) -> None:
        self.local: LRU[str, str] = LRU(
            settings.apq_cache_size, max_bytes=APQ_BYTES, weigh=lambda key, document: len(key) + len(document)
        )
        self.ttl = settings.apq_ttl_seconds
        self.cacheable = settings.cache_document_bytes
        self._redis: Any = None
        if settings.redis_url:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(settings.redis_url)

    async def get(self, digest: str) -> str | None:
        document: str | None = self.local.get(digest)
        if document is None and self._redis is not None:
            try:
                raw = await self._redis.get(REDIS_PREFIX + digest)
            except Exception:  # Redis down: behave as a miss, the client resends the query
                log.warning("persisted-query store: Redis unavailable")
                return None
            if raw is not None:
                document = raw.decode() if isinstance(raw, bytes) else str(raw)
                if sha256_hex(document) != digest:
                    return None
                self.local.put(digest, document)
        return document

    async def put(self, digest: str, document: str) -> None:
        if len(document) > self.cacheable:
            return  # run, not registered: the client sends the text again next time (the APQ protocol allows it)
        self.local.put(digest, document)
        if self._redis is not None:
            try:
                await self._redis.set(REDIS_PREFIX + digest, document, ex=self.ttl)
            except Exception:
                log.warning("persisted-query store: Redis unavailable")

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


class TrustedDocuments:
    """The trusted documents in the database, held in memory; a miss reloads at most every few seconds."""

    RELOAD_AFTER = 10.0

    def __init__(self, db: Database) -> None:
        self.db = db
        self._documents: dict[str, str] = {}
        self._clients: dict[str, set[str]] = {}
        self._loaded_at = float("-inf")

    async def load(self) -> int:
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(PersistedDocument.client, PersistedDocument.sha256, PersistedDocument.document)
                )
            ).all()
        documents: dict[str, str] = {}
        clients: dict[str, set[str]] = {}
        for client, digest, document in rows:
            documents[digest] = document
            clients.setdefault(digest, set()).add(client)
        self._documents, self._clients = documents, clients
        self._loaded_at = time.monotonic()
        return len(rows)

    async def get(self, digest: str) -> tuple[str, set[str]] | None:
        if digest not in self._documents and time.monotonic() - self._loaded_at > self.RELOAD_AFTER:
            await self.load()
        document = self._documents.get(digest)
        return None if document is None else (document, self._clients.get(digest, set()))


async def store_documents(
    db: Database, client: str, manifest: dict[str, str], *, replace: bool = False
) -> tuple[int, int, int]:
    """Load a manifest (hash -> document) for one client. Returns (added, unchanged, removed)."""
    for digest, document in manifest.items():
        if not _HASH.match(digest) or sha256_hex(document) != digest:
            raise ValueError(f"manifest entry {digest[:16]}... does not match the SHA-256 of its document")
        parse(document)  # a syntax error refuses the whole manifest
    async with db.transaction() as session:
        existing = set(
            (
                await session.execute(select(PersistedDocument.sha256).where(PersistedDocument.client == client))
            ).scalars()
        )
        added = 0
        for digest, document in manifest.items():
            if digest in existing:
                continue
            session.add(
                PersistedDocument(
                    client=client, sha256=digest, document=document, operation_name=operation_name_of(document)
                )
            )
            added += 1
        removed = 0
        if replace:
            stale = existing - set(manifest)
            if stale:
                await session.execute(
                    delete(PersistedDocument).where(
                        PersistedDocument.client == client, PersistedDocument.sha256.in_(stale)
                    )
                )
                removed = len(stale)
    return added, len(existing & set(manifest)), removed


# ---- resolving a request's document --------------------------------------------------------------


@dataclass
class Resolved:
    query: str | None
    digest: str | None = None  # set when the document came by hash: it is prepared once per schema
    register: bool = False  # an APQ registration to store once the document proved valid


@dataclass
class Refused:
    code: ErrorCode
    message: str
    status: int = 400
    request_level: bool = False  # True: the status stands even under application/json


class PersistedQueries:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.automatic = AutomaticStore(settings)
        self.trusted = TrustedDocuments(db)

    async def resolve(self, data: dict[str, Any], principal: Principal) -> Resolved | Refused:
        query = data.get("query") or None
        extensions = data.get("extensions") or {}
        persisted = extensions.get("persistedQuery")
        restricted = principal.is_authenticated and principal.trusted_documents_only
        if persisted is None:
            if restricted:
                return Refused(
                    ErrorCode.PERSISTED_QUERY_REQUIRED, "This client may run only its registered documents, by hash"
                )
            return Resolved(query=query)
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            return Refused(ErrorCode.BAD_USER_INPUT, "Unsupported persistedQuery version", request_level=True)
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or not _HASH.match(digest.lower()):
            return Refused(
                ErrorCode.BAD_USER_INPUT, "persistedQuery.sha256Hash must be 64 hex digits", request_level=True
            )
        digest = digest.lower()
        if query is not None and sha256_hex(query) != digest:
            return Refused(ErrorCode.BAD_USER_INPUT, "provided sha does not match query", request_level=True)
        trusted = await self.trusted.get(digest)
        if trusted is not None:
            document, clients = trusted
            if restricted and MINI_PROGRAM not in clients:
                return Refused(ErrorCode.PERSISTED_QUERY_REQUIRED, "Not one of this client's registered documents")
            return Resolved(query=document, digest=digest)
        if restricted:
            if query is None:
                return Refused(ErrorCode.PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
            return Refused(ErrorCode.PERSISTED_QUERY_REQUIRED, "Not one of this client's registered documents")
        if query is not None:
            return Resolved(query=query, digest=digest, register=await self.automatic.get(digest) is None)
        stored = await self.automatic.get(digest)
        if stored is None:
            return Refused(ErrorCode.PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
        return Resolved(query=stored, digest=digest)

    async def close(self) -> None:
        await self.automatic.close()


# ---- parse and validate once -------------------------------------------------------------------


class PreparedStats:
    """Counters a test (or /metrics) can read: prepared-document hits and misses, parses, validations."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.parses = 0
        self.validations = 0


STATS = PreparedStats()


def _parse(query: str, **options: Any) -> DocumentNode:
    STATS.parses += 1
    return parse(query, **options)


def _validate(schema: Any, document: DocumentNode, rules: tuple[Any, ...]) -> list[GraphQLError]:
    STATS.validations += 1
    return validate_document(schema, document, rules)


_PARSED: LRU[tuple[str, tuple[tuple[str, Any], ...]], DocumentNode] = LRU(
    512, max_bytes=PARSED_BYTES, weigh=lambda key, _document: text_weight(key[0])
)


def _parse_cached(query: str, cacheable: int, **options: Any) -> DocumentNode:
    """Parsed documents kept by text, unless the text is longer than `cacheable` characters."""
    if len(query) > cacheable:
        return _parse(query, **options)
    key = (query, tuple(sorted(options.items())))
    document = _PARSED.get(key)
    if document is None:
        document = _parse(query, **options)
        _PARSED.put(key, document)
    return document


# role schema -> (hash -> parsed and validated document); a schema rebuilt after a policy change starts empty
_prepared: weakref.WeakKeyDictionary[Any, LRU[str, Any]] = weakref.WeakKeyDictionary()


def _prepared_for(schema: Any, size: int) -> LRU[str, Any]:
    cache = _prepared.get(schema)
    if cache is None:
        cache = _prepared[schema] = LRU(size, max_bytes=PREPARED_BYTES, weigh=lambda _key, doc: node_weight(doc))
    return cache


class PreparedDocuments(SchemaExtension):
    """Keep documents parsed and validated per schema, so that a hit does neither: persisted documents by
    their hash, ordinary queries by their text. (The validation rules of one role schema are fixed, and
    strawberry's limiters make a new rule class per request, so strawberry's ValidationCache, keyed by the
    rule classes, never hits.) Only documents that passed validation are kept."""

    def __init__(self, cache_size: int = 1000, cacheable: int = 20_000) -> None:
        super().__init__()
        self.cache_size = cache_size
        self.cacheable = cacheable

    def _memo(self) -> RequestState:
        state = getattr(self.execution_context.context, "state", None)
        return state if isinstance(state, RequestState) else RequestState()

    def _key(self, memo: RequestState) -> str | None:
        digest = memo.persisted_digest
        if digest:
            return str(digest)
        query = self.execution_context.query
        if not query or len(query) > self.cacheable:
            return None  # a long document is parsed and validated for this request only
        return "text:" + query

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        memo = self._memo()
        key = self._key(memo)
        if key is not None:
            document = _prepared_for(context.schema, self.cache_size).get(key)
            if document is not None:
                STATS.hits += 1
                memo.prepared_hit = True
                context.graphql_document = document
                yield
                return
            STATS.misses += 1
        if context.query is not None:
            context.graphql_document = _parse_cached(context.query, self.cacheable, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        memo = self._memo()
        if memo.prepared_hit:
            context.pre_execution_errors = []
            yield
            return
        assert context.graphql_document is not None
        errors = _validate(context.schema._schema, context.graphql_document, tuple(context.validation_rules))
        context.pre_execution_errors = errors
        key = self._key(memo)
        if key is not None and not errors:
            _prepared_for(context.schema, self.cache_size).put(key, context.graphql_document)
        yield
