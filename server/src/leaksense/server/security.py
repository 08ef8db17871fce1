"""Bearer tokens: generated with :mod:`secrets`, stored only as SHA-256.

Tokens carry 256 bits of entropy, so a fast hash is safe (no need for a password
KDF) and lets the server find a token by its hash in one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "lks_"  # noqa: S105 - a public prefix, not a secret


def new_token() -> str:
    """A fresh random bearer token (shown once, never stored in clear)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
