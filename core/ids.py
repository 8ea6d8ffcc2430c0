"""Opaque global ids: base64 of `Type:pk`. Clients treat them as strings; the server checks the type."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from core.errors import not_found


@lru_cache(maxsize=1 << 16)  # a page of records encodes the same ids request after request
def encode_id(type_name: str, pk: int | str) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def decode_id(type_name: str, value: str) -> int:
    """The integer key of an id of `type_name`; any other string is NOT_FOUND, as an unknown id is."""
    try:
        padded = value + "=" * (-len(value) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        kind, _, pk = raw.partition(":")
        # ASCII digits only: str.isdigit() also takes other scripts' digits (١ is 1)
        if kind == type_name and pk.isascii() and pk.isdigit() and len(pk) < 19:
            return int(pk)
    except (binascii.Error, UnicodeError, ValueError):
        pass
    raise not_found(type_name)


def decode_key(type_name: str, value: str) -> str:
    """The key of an id of a type keyed by a token rather than a number (a session: 32 hex digits); any other
    string is NOT_FOUND."""
    try:
        raw = base64.urlsafe_b64decode((value + "=" * (-len(value) % 4)).encode("ascii")).decode("ascii")
        kind, _, key = raw.partition(":")
        if kind == type_name and 0 < len(key) <= 64 and all(c in "0123456789abcdef" for c in key):
            return key
    except (binascii.Error, UnicodeError, ValueError):
        pass
    raise not_found(type_name)


def decode_optional_id(type_name: str, value: str | None) -> int | None:
    return None if value is None else decode_id(type_name, value)
