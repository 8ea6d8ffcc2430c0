"""Turning execution results into GraphQL-over-HTTP error objects with a stable `extensions.code`.

Expected failures (AppError) keep their safe message. Anything unexpected is masked: the client
sees "Internal server error" with the request id; the log holds the rest (driver messages carry
no parameters: the engine hides them).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

from core.db import unreachable
from core.errors import AppError, ErrorCode

log = logging.getLogger("followup.errors")

_TOO_COMPLEX = (
    re.compile(r"exceeds maximum operation depth"),
    re.compile(r"aliases found\. Allowed"),
    re.compile(r"more than \d+ tokens"),
    re.compile(r"maximum introspection depth", re.IGNORECASE),
)

PRE_EXECUTION = {
    ErrorCode.GRAPHQL_PARSE_FAILED.value,
    ErrorCode.GRAPHQL_VALIDATION_FAILED.value,
    ErrorCode.QUERY_TOO_COMPLEX.value,
}


def classify(error: GraphQLError, *, executed: bool) -> str:
    original = error.original_error
    if isinstance(error, AppError):
        return error.code.value
    if isinstance(original, AppError):
        return original.code.value
    if any(pattern.search(error.message) for pattern in _TOO_COMPLEX):
        return ErrorCode.QUERY_TOO_COMPLEX.value
    if isinstance(error, GraphQLSyntaxError):
        return ErrorCode.GRAPHQL_PARSE_FAILED.value
    if original is None and not executed:
        return ErrorCode.GRAPHQL_VALIDATION_FAILED.value
    if error.path is None and (original is None or isinstance(original, GraphQLError)):
        return ErrorCode.BAD_USER_INPUT.value  # variables that do not coerce
    if original is not None and unreachable(original):
        return ErrorCode.UNAVAILABLE.value
    return ErrorCode.INTERNAL.value


UNAVAILABLE_MESSAGE = "A service this request needs (the database or Redis) is unreachable: try again shortly"


def format_error(error: GraphQLError, *, executed: bool, request_id: str) -> dict[str, Any]:
    code = classify(error, executed=executed)
    expected = isinstance(error, AppError) or isinstance(error.original_error, AppError)
    if code == ErrorCode.UNAVAILABLE.value and not expected:
        log.warning("request %s at %s: %s", request_id, error.path, type(error.original_error).__name__)
        unavailable: dict[str, Any] = {"message": UNAVAILABLE_MESSAGE}
        if error.path:
            unavailable["path"] = error.path
        unavailable["extensions"] = {"code": code, "requestId": request_id, "retryAfter": 1}
        return unavailable
    if code == ErrorCode.INTERNAL.value and not expected:
        log.error(
            "unexpected error (request %s) at %s",
            request_id,
            error.path,
            exc_info=error.original_error or error,
        )
        formatted: dict[str, Any] = {"message": "Internal server error"}
        if error.locations:
            formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
        if error.path:
            formatted["path"] = error.path
        formatted["extensions"] = {"code": code, "requestId": request_id}
        return formatted
    formatted = dict(error.formatted)
    extensions = dict(formatted.get("extensions") or {})
    original = error.original_error
    if isinstance(original, AppError):
        extensions.update(original.extensions or {})
    extensions["code"] = code
    if code == ErrorCode.INTERNAL.value:
        extensions["requestId"] = request_id  # an expected failure of ours (an upstream down): safe message
    formatted["extensions"] = extensions
    return formatted


def request_error(code: ErrorCode, message: str, **extensions: Any) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code.value, **extensions}}]}


_CANNOT_QUERY = re.compile(r"^Cannot query field '(\w+)' on type '(\w+)'\.")
_UNKNOWN_TYPE = re.compile(r"^Unknown type '(\w+)'\.")


def hint_unavailable(formatted: dict[str, Any], coordinates: frozenset[str], *, anonymous: bool) -> dict[str, Any]:
    """A validation error about a field (or type) that exists, only not in the caller's schema, says so instead
    of reading like a typo: log in (anonymous callers), or not available to your role (never who has it)."""
    message = str(formatted.get("message", ""))
    found = _CANNOT_QUERY.match(message)
    exists = found is not None and f"{found.group(2)}.{found.group(1)}" in coordinates
    if not exists:
        unknown = _UNKNOWN_TYPE.match(message)
        exists = unknown is not None and f"{unknown.group(1)}.*" in coordinates
    if not exists:
        return formatted
    extensions = dict(formatted.get("extensions") or {})
    if anonymous:
        formatted["message"] = message.split(".", 1)[0] + ". It needs a logged-in user: log in and send the token."
        extensions["reason"] = "LOGIN_REQUIRED"
    else:
        formatted["message"] = message.split(".", 1)[0] + ". It is not available to your role."
        extensions["reason"] = "NOT_AVAILABLE_TO_ROLE"
    formatted["extensions"] = extensions
    return formatted
