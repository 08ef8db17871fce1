"""Password hashing with argon2id (argon2-cffi's recommended parameters).

A hash carries its own parameters, so raising them later (a faster server, newer
advice) needs no migration: :func:`verify` tells when a stored hash is weaker than
the current parameters, and login stores a fresh one.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from leaksense.core.errors import InvalidInput

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("leaksense-timing-equaliser")


def check_password_policy(password: str) -> None:
    """Refuse a password too short (or absurdly long) to be worth hashing."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput(f"a password has at most {MAX_PASSWORD_CHARS} characters")


def hash_password(password: str) -> str:
    """The argon2id hash to store (salted, parameters included)."""
    return _hasher.hash(password)


def verify(stored_hash: str, password: str) -> tuple[bool, bool]:
    """``(matches, needs_rehash)``; a corrupt stored hash simply does not match."""
    try:
        _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, _hasher.check_needs_rehash(stored_hash)


def burn_time(password: str) -> None:
    """Verify against a dummy hash, so an unknown user takes as long as a wrong password."""
    verify(_DUMMY_HASH, password)
