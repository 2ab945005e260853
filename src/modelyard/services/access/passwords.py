"""Passwords are kept as Argon2id hashes (argon2-cffi's defaults, RFC 9106's second choice)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
# Verified against when the user does not exist, so a wrong name takes as long as a wrong
# password and the time does not tell which names exist.
_DECOY = _HASHER.hash("modelyard decoy password")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(digest: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(digest or _DECOY, password) and digest is not None
    except (VerificationError, InvalidHashError):
        return False
