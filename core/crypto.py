"""Encryption at rest for identity and phone numbers, with a keyed hash beside each for exact search.

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`). Several keys may be
configured: the first encrypts, all decrypt (MultiFernet), so keys rotate without downtime:
add the new key first, run `server.py rotate-keys`, then drop the old one. The search hash is an
HMAC-SHA256 under its own key, so a database dump alone reveals neither value nor searchable digits.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Callable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# Demo-only keys: accepted in demo mode, refused in production mode (core/settings.py).
DEMO_DATA_KEY = "ZGVtby1vbmx5LWRhdGEta2V5LWNoYW5nZS1tZS0wMDA="
DEMO_HASH_KEY = "demo-only-search-hash-key-change-me"


class FieldCipher:
    def __init__(self, keys: list[str], hash_key: str) -> None:
        if not keys:
            raise ValueError("at least one data encryption key is needed")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        self._hash_key = hash_key.encode()

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as error:
            raise ValueError("a value could not be decrypted with any configured key") from error

    def rotate(self, token: str) -> str:
        """Re-encrypt under the first (current) key."""
        return self._fernet.rotate(token.encode()).decode()

    def digest(self, value: str) -> str:
        return hmac.new(self._hash_key, normalise(value).encode(), hashlib.sha256).hexdigest()


def normalise(value: str) -> str:
    """One form for hashing: NFKC, upper case, no spaces or dashes (138-1234-5678 == 13812345678)."""
    text = unicodedata.normalize("NFKC", value).strip().upper()
    return "".join(ch for ch in text if ch not in " -")


_current: FieldCipher | None = None


def configure(keys: list[str], hash_key: str) -> FieldCipher:
    global _current
    _current = FieldCipher(keys, hash_key)
    return _current


# Where the keys come from when nothing configured them (core/settings.py registers the settings' keys):
# this module stays below the settings, which import its demo keys.
_default_keys: Callable[[], tuple[list[str], str]] | None = None


def default_keys(source: Callable[[], tuple[list[str], str]]) -> None:
    global _default_keys
    _default_keys = source


def cipher() -> FieldCipher:
    """The configured cipher (from the default key source on first use)."""
    if _current is None:
        if _default_keys is None:
            raise RuntimeError("no encryption keys configured (core.crypto.configure)")
        return configure(*_default_keys())
    return _current


def digest_or_none(value: str | None) -> str | None:
    return None if value is None else cipher().digest(value)
