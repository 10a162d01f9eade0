"""One tap, one action: one-time form keys.

Every page form that changes something carries a fresh random key, signed for the person it was drawn
for. The request that first posts a key inserts it into ``form_submissions`` in the same transaction as
the change, so a rollback frees the key and a commit keeps it with the change. A second post of the
same key (a double tap on slow Wi-Fi, a browser resending) fails the unique insert and is answered with
the first result instead of acting again. The unique key is the guard under concurrency too: SQLite
serialises writers with BEGIN IMMEDIATE; on PostgreSQL the second insert waits for the first
transaction and then fails.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.database import rows_changed
from app.models import FormSubmission

KEEP_FOR = timedelta(hours=24)
_SIGNATURE_LENGTH = 22


def _signature(secret: str, token: str, user_id: int | None) -> str:
    message = f"{token}:{user_id if user_id is not None else '-'}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:_SIGNATURE_LENGTH]


def new_key(secret: str, user_id: int | None) -> str:
    """A fresh key for one drawing of one form, bound to ``user_id`` (None before signing in)."""
    token = secrets.token_urlsafe(18)
    return f"{token}.{_signature(secret, token, user_id)}"


def verified_token(secret: str, key: str, user_id: int | None) -> str | None:
    """The key's token if it was issued to ``user_id``; None for anything else (another person's key, junk)."""
    token, _, signature = (key or "").strip().partition(".")
    if not token or len(token) > 40 or len(signature) != _SIGNATURE_LENGTH:
        return None
    if not hmac.compare_digest(signature, _signature(secret, token, user_id)):
        return None
    return token


def claim(session: Session, token: str, user_id: int | None, endpoint: str) -> FormSubmission | None:
    """Insert the key in the current transaction; None when it is already taken (committed by another request).

    On PostgreSQL the insert waits while another transaction holds the same key, then fails once that
    one commits (or succeeds if it rolled back).
    """
    row = FormSubmission(key=token, user_id=user_id, endpoint=(endpoint or "")[:80])
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    return row


def first_result(session: Session, token: str) -> FormSubmission | None:
    """The committed row of a key, read afresh."""
    return session.scalar(sa.select(FormSubmission).where(FormSubmission.key == token).execution_options(populate_existing=True))


def record_result(session: Session, token: str, status: int, location: str | None) -> None:
    """Keep where the first answer sent the browser, for replays."""
    session.execute(
        sa.update(FormSubmission)
        .where(FormSubmission.key == token)
        .values(status=status, location=(location or None) and location[:500])
    )


def release(session: Session, token: str) -> None:
    """Free a key whose request committed only a refusal (an audited attempt): posting it again tries again."""
    session.execute(sa.delete(FormSubmission).where(FormSubmission.key == token))


def purge_expired(session: Session, now: datetime) -> int:
    """Forget keys older than a day (a timed job; idempotent)."""
    result = session.execute(sa.delete(FormSubmission).where(FormSubmission.created_at < now - KEEP_FOR))
    return rows_changed(result)
