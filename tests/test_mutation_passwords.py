"""Password rules pinned exactly: argon2id hashing, checking (with no account), rehashing, and the length limits.

Written for mutation testing (issue 19): each assertion is one a changed comparison, limit or message in
app/services/passwords.py would break.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from app.services import passwords


def test_a_password_is_hashed_with_argon2id_and_salted():
    first, second = passwords.hash_password("correct horse battery"), passwords.hash_password("correct horse battery")
    assert first.startswith("$argon2id$") and first != second
    assert passwords.check_password(first, "correct horse battery") is True
    assert passwords.check_password(first, "correct horse batterY") is False


def test_no_account_never_matches_even_the_dummy_password():
    assert passwords.check_password(None, "lanyard-no-such-account") is False
    assert passwords.check_password(None, "anything") is False
    assert passwords.check_password("", "lanyard-no-such-account") is False


def test_a_damaged_stored_hash_is_a_failed_check_not_an_error():
    assert passwords.check_password("not a hash", "x") is False
    good = passwords.hash_password("correct horse battery")
    assert passwords.check_password(good[:-6] + "AAAAAA", "correct horse battery") is False
    assert passwords.check_password("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$", "x") is False


def test_only_a_hash_with_other_parameters_needs_rehashing():
    assert passwords.needs_rehash(passwords.hash_password("correct horse battery")) is False
    assert passwords.needs_rehash(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("x")) is True


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("1234567", "Use at least 8 characters; a short sentence is easy to remember."),
        ("", "Use at least 8 characters; a short sentence is easy to remember."),
        ("x" * 129, "Use at most 128 characters."),
        (" " * 8, "A password cannot be only spaces."),
        ("\t \n     ", "A password cannot be only spaces."),
        ("12345678", None),
        ("x" * 128, None),
        (" a      ", None),
    ],
)
def test_a_new_password_is_8_to_128_characters_not_only_spaces(password, problem):
    assert passwords.password_problem(password) == problem
