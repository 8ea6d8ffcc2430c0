"""No secret, token or code in the log, at any level and from any logger (ours, httpx's, uvicorn's, the
database drivers').

Redaction happens where every record is made (`logging.setLogRecordFactory`), so it holds for every handler
(a test's capture included) and every logger, whatever its level: a new module or library that logs a URL,
a token or a request body gets it without remembering. What is redacted:

* the configured secrets themselves (signing key, encryption and search-hash keys, the WeChat app secret,
  passwords inside database and Redis URLs), wherever they appear;
* values of secret-bearing names in query strings, forms and JSON (`secret=`, `js_code=`, `code=`,
  `"password": "..."`, `"refreshToken": "..."`, ...);
* bearer tokens and anything shaped like a JWT;
* the parameters of a database driver's calls (aiosqlite logs each statement's values at DEBUG);
* the rows SQLAlchemy logs at DEBUG (`Row (...)`: names, identity numbers, notes; `hide_parameters` hides a
  statement's values but not what it returns);
* anything shaped like a resident identity number (18 characters, birth date inside), wherever it appears.

The message keeps its shape (arguments stay arguments: uvicorn's access formatter unpacks them), with each
value replaced by `[redacted]`. An exception's traceback text is redacted as well.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

# names whose values are secrets wherever they are written name=value or "name": "value"
_SECRET_NAMES = (
    r"secret|app_?secret|js_?code|code|token|access_?token|refresh_?token|id_?token|session_?key|password|"
    r"passwd|new_?password|old_?password|console_?password|totp|otp|signature|api_?key|authorization|"
    r"binding_?code|id_?number"
)  # every pattern below is case-insensitive: `access_?token` covers accessToken, and so on
_SECRET_NAME = re.compile(rf"(?i)^(?:{_SECRET_NAMES})$")
_QUERY_PARAMETER = re.compile(rf"(?i)(?<![A-Za-z0-9_])({_SECRET_NAMES})=([^&\s\"'#;,)]+)")
_JSON_VALUE = re.compile(rf"(?i)([\"']({_SECRET_NAMES})[\"']\s*:\s*)([\"'])((?:\\.|(?!\3).)*)\3")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# a mainland resident identity number: area code, birth date (YYYYMMDD), sequence, check digit or X
_RESIDENT_ID = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])"
)
_ROW_HIDDEN = "[row hidden]"
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)(@)")

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_installed = False


def remember_secrets(values: Iterable[str | None]) -> None:
    """Values to cut out of every record from now on (short ones, under 6 characters, are not kept: they
    would blank ordinary words)."""
    global _pattern
    with _lock:
        for value in values:
            if value and len(value) >= 6:
                _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(value) for value in ordered)) if ordered else None


def is_secret_name(name: str) -> bool:
    """Whether a field or argument of that name carries a secret (a password, token, code, identity number):
    its value is never logged nor recorded (the operation log's variables included)."""
    return bool(_SECRET_NAME.match(name))


def redact(text: str) -> str:
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}\3", text)
    text = _QUERY_PARAMETER.sub(rf"\1={REDACTED}", text)
    text = _JSON_VALUE.sub(rf"\1\3{REDACTED}\3", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    text = _RESIDENT_ID.sub(REDACTED, text)
    return _JWT.sub(REDACTED, text)


def _call_without_arguments(call: functools.partial[Any]) -> str:
    """A driver's call as its DEBUG log would show it, without the values it carries (aiosqlite logs every
    `execute` with the statement's parameters, whatever SQLAlchemy's `hide_parameters` says)."""
    name = getattr(call.func, "__name__", type(call.func).__name__)
    statement = next((argument for argument in call.args if isinstance(argument, str)), None)
    if statement is None:
        return f"{name}(...)"
    return f"{name}({redact(statement)!r}, [parameters hidden])"


def _redact_argument(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value  # keeps %d and %.1f working
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, functools.partial):
        return _call_without_arguments(value)
    shown = str(value)  # an httpx URL, an exception, a dict: compared as the text it would print
    cleaned = redact(shown)
    return value if cleaned == shown else cleaned


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    if record.name.startswith("sqlalchemy.engine") and record.msg == "Row %r":
        record.args = (_ROW_HIDDEN,)  # a result row is patient data, whatever its columns
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    elif record.msg is not None and not isinstance(record.msg, (int, float)):
        shown = str(record.msg)
        cleaned = redact(shown)
        if cleaned != shown:
            record.msg = cleaned
    if isinstance(record.args, dict):
        record.args = {key: _redact_argument(value) for key, value in record.args.items()}
    elif isinstance(record.args, tuple):
        record.args = tuple(_redact_argument(value) for value in record.args)
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """The same redaction as a filter, for handlers set up by others (an operator's logging config)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install(secrets: Iterable[str | None] = ()) -> None:
    """Redact every record made from now on (idempotent; later calls add secrets)."""
    global _installed
    remember_secrets(secrets)
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True


def settings_secrets(settings: Any) -> list[str]:
    """Every secret a settings object holds: each `SecretStr` field (a new one is covered without a change
    here), each comma-separated part of one (the encryption keys), and passwords inside its URLs."""
    from pydantic import SecretStr

    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            found.append(secret)
            found.extend(part.strip() for part in secret.split(","))
        elif isinstance(value, str) and "://" in value:
            match = _URL_PASSWORD.search(value)
            if match:
                found.append(match.group(2))
    return found
