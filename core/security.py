"""Password hashing (argon2), password policy, access tokens (JWT) and opaque refresh tokens."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import string
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import bad_input
from core.lru import LRU
from core.timeutil import utcnow

_hasher = PasswordHasher()
# Verified when the user does not exist, so a wrong username costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def hash_password_off_loop(password: str) -> str:
    """argon2 takes ~0.1-0.2 s of CPU: run it in a worker thread so the event loop keeps serving."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_off_loop(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def normalise_username(username: str) -> str:
    """Usernames compare case-insensitively on MariaDB, so store one canonical form everywhere."""
    return unicodedata.normalize("NFKC", username).strip().lower()


def check_password_policy(password: str, *, username: str | None, min_length: int) -> None:
    if len(password) < min_length:
        raise bad_input(f"Password must be at least {min_length} characters", "password")
    if len(password) > 256:
        raise bad_input("Password is too long", "password")
    classes = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(c in string.punctuation or not c.isalnum() for c in password),
    ]
    if sum(classes) < 3:
        raise bad_input("Password needs three of: lower case, upper case, digits, symbols", "password")
    if username and len(username) >= 3 and normalise_username(username) in password.lower():
        raise bad_input("Password must not contain the username", "password")


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    session_id: str
    client: str
    expires_at: datetime


def issue_access_token(*, secret: str, user_id: int, session_id: str, client: str, minutes: int) -> tuple[str, int]:
    now = utcnow()
    expires = now + timedelta(minutes=minutes)
    payload = {
        "sub": str(user_id),
        "sid": session_id,
        "cli": client,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(payload, secret, algorithm="HS256"), minutes * 60


# Tokens verified lately, by (token, secret): a client sends the same token with each request for its
# whole life, and PyJWT's verification (a Python loop over every character of the token, the signature,
# the claims) cost as much as the session look-up itself. Only a verified token is kept, only until it
# expires, and a hit still checks the expiry; revocation is the session row's, checked every request.
_VERIFIED: LRU[tuple[str, str], AccessClaims] = LRU(4096)


def decode_access_token(token: str, *, secret: str) -> AccessClaims | None:
    """The claims of a valid, unexpired access token, or None."""
    key = (token, secret)
    known = _VERIFIED.get(key)
    if known is not None:
        if known.expires_at > utcnow():
            return known
        _VERIFIED.pop(key)
        return None
    claims = _verify_access_token(token, secret=secret)
    if claims is not None:
        _VERIFIED.put(key, claims)
    return claims


TOKEN_EXPIRED = "TOKEN_EXPIRED"
TOKEN_INVALID = "TOKEN_INVALID"


def access_token_problem(token: str, *, secret: str) -> str:
    """Why a token was refused, for the client: TOKEN_EXPIRED (genuine but past its time: refreshing helps) or
    TOKEN_INVALID (not ours, tampered with, or not an access token: log in again)."""
    try:
        payload = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "sid"], "verify_exp": False}
        )
    except jwt.PyJWTError:
        return TOKEN_INVALID
    if payload.get("typ") != "access":
        return TOKEN_INVALID
    return TOKEN_EXPIRED if int(payload["exp"]) <= int(utcnow().timestamp()) else TOKEN_INVALID


def _verify_access_token(token: str, *, secret: str) -> AccessClaims | None:
    try:
        payload = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "sid"]})
    except jwt.PyJWTError:
        return None
    if payload.get("typ") != "access" or not str(payload.get("sub", "")).isdigit():
        return None
    return AccessClaims(
        user_id=int(payload["sub"]),
        session_id=str(payload["sid"]),
        client=str(payload.get("cli", "console")),
        expires_at=datetime.fromtimestamp(payload["exp"], UTC),
    )


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Refresh tokens and binding codes are stored only as digests."""
    return hashlib.sha256(token.encode()).hexdigest()
