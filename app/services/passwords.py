"""argon2id password hashing, with a rehash when the parameters change."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 128

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# A real hash to verify against when the account does not exist, so timing does not reveal it.
_DUMMY_HASH = _hasher.hash("lanyard-no-such-account")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored_hash``. With no hash (no account, or no password yet: None or
    empty) the dummy hash is verified for the same time, and the answer is always False."""
    try:
        matched = _hasher.verify(stored_hash or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return matched and bool(stored_hash)


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def password_problem(password: str) -> str | None:
    """Return what is wrong with a new password, or None."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters; a short sentence is easy to remember."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if not password.strip():
        return "A password cannot be only spaces."
    return None
