"""What the endpoint notes about each operation for the request figures (resolvers/data/figures.py): its
error code and, for a document the server knows (a trusted document or a registered persisted query), the name
of the operation it runs. Any other document counts as `other`, so clients cannot flood the figures with names."""

from __future__ import annotations

from typing import Any

import orjson
from graphql import GraphQLError, Source, TokenKind
from graphql.language.lexer import Lexer

from core.errors import ErrorCode
from core.lru import LRU

_OPERATIONS = {"query", "mutation", "subscription"}


def error_code_of(error: Any) -> str:
    code = error.get("extensions", {}).get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else ErrorCode.INTERNAL.value


def first_error_code(body: dict[str, Any]) -> str:
    """The code of a response body's first error; '' when it has none."""
    errors = body.get("errors") or ()
    return error_code_of(errors[0]) if errors else ""


def response_error_code(body: bytes | memoryview) -> str:
    """The code of an encoded response's first error (a request refused before any operation ran)."""
    try:
        errors = orjson.loads(bytes(body)).get("errors") or [{}]
    except (orjson.JSONDecodeError, AttributeError):
        return ErrorCode.INTERNAL.value
    return error_code_of(errors[0])


class OperationNames:
    """Each known document's operation name, found once per digest (bounded)."""

    def __init__(self, size: int = 4096) -> None:
        self._names: LRU[str, tuple[str]] = LRU(size)

    def name(self, digest: str, document: str | None, requested: Any) -> str | None:
        """The operation asked for by name, or the document's only named operation."""
        if isinstance(requested, str):
            return requested
        found = self._names.get(digest)
        if found is None:
            if document is None:
                return None
            found = (only_operation_name(document) or "",)
            self._names.put(digest, found)
        return found[0] or None


def only_operation_name(document: str) -> str | None:
    """The name of the document's operation when it has exactly one, named; read off the tokens (comments and
    strings skipped by the lexer) without parsing the document again (it was parsed once, for running it)."""
    lexer = Lexer(Source(document))
    names: list[str | None] = []
    depth, expect_name = 0, False
    try:
        token = lexer.advance()
        while token.kind is not TokenKind.EOF:
            if token.kind is TokenKind.BRACE_L:
                if depth == 0 and expect_name:  # `query {`: an operation without a name
                    names.append(None)
                depth, expect_name = depth + 1, False
            elif token.kind is TokenKind.BRACE_R:
                depth -= 1
            elif depth == 0 and token.kind is TokenKind.NAME:
                if expect_name:
                    names.append(token.value)
                    expect_name = False
                else:
                    expect_name = token.value in _OPERATIONS
            elif depth == 0 and expect_name:  # `query (` or `query @`: no name
                names.append(None)
                expect_name = False
            token = lexer.advance()
    except GraphQLError:
        return None
    return names[0] if len(names) == 1 else None
