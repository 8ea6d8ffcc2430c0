"""The API's one list of error codes, and the exception resolvers raise to report one."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from graphql import GraphQLError


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    # HTTP 503 with Retry-After: the database or Redis could not be reached (or no connection came free in time);
    # a write reported so was not kept, unless `extensions.inDoubt` says the connection broke while it committed
    UNAVAILABLE = "UNAVAILABLE"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_REQUIRED = "PERSISTED_QUERY_REQUIRED"
    NOT_CONFIGURED = "NOT_CONFIGURED"  # the server lacks a setting this operation needs (extensions.settings)
    OVERLOADED = "OVERLOADED"  # HTTP 503 with Retry-After: too many requests in flight; nothing ran, retry
    SHUTTING_DOWN = "SHUTTING_DOWN"  # HTTP 503: this instance is stopping; nothing ran, retry (another answers)
    TIMEOUT = "TIMEOUT"  # HTTP 504: the request ran past REQUEST_TIMEOUT_SECONDS and was stopped; nothing was kept
    INTERNAL = "INTERNAL"


class AppError(GraphQLError):
    """An expected failure with a stable `extensions.code`; its message is safe to show."""

    def __init__(self, code: ErrorCode, message: str, **extra: Any) -> None:
        super().__init__(message, extensions={"code": code.value, **extra})
        self.code = code


def unauthenticated(message: str = "Authentication required") -> AppError:
    return AppError(ErrorCode.UNAUTHENTICATED, message)


def forbidden(message: str = "Not allowed") -> AppError:
    return AppError(ErrorCode.FORBIDDEN, message)


def not_found(what: str = "Record") -> AppError:
    return AppError(ErrorCode.NOT_FOUND, f"{what} not found")


def bad_input(message: str, field: str | None = None) -> AppError:
    return AppError(ErrorCode.BAD_USER_INPUT, message, **({"field": field} if field else {}))


def conflict(message: str) -> AppError:
    return AppError(ErrorCode.CONFLICT, message)
