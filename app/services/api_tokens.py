"""Personal API tokens for scripts and MIS sync: they act with the person's own roles."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.models import ApiToken, User
from app.services.audit import record_audit_event
from app.services.errors import NotFound, ValidationFailed

TOKEN_PREFIX = "lny_"  # noqa: S105  (a marker, not a secret)
USE_AUDIT_INTERVAL = timedelta(hours=1)
MAX_ACTIVE_TOKENS = 10


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, owner: User, name: str) -> tuple[ApiToken, str]:
    """Make a token; the secret is returned once and only its hash is kept."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ValidationFailed("Name the token.", {"name": ["Give it a name up to 80 characters, like 'MIS sync'."]})
    active = session.scalar(sa.select(sa.func.count()).where(ApiToken.user_id == owner.id, ApiToken.revoked_at.is_(None))) or 0
    if active >= MAX_ACTIVE_TOKENS:
        raise ValidationFailed("Too many tokens.", {"name": [f"You can have {MAX_ACTIVE_TOKENS} tokens; revoke one first."]})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=owner.id, name=name, token_hash=_hash(secret), prefix=secret[:10])
    session.add(token)
    session.flush()
    record_audit_event(session, owner, "api_token.created", "api_token", token.id, {"name": name})
    return token, secret


def tokens_of(session: Session, owner: User) -> list[ApiToken]:
    return list(session.scalars(sa.select(ApiToken).where(ApiToken.user_id == owner.id).order_by(ApiToken.id.desc())))


def owned_token(session: Session, owner: User, token_id: int) -> ApiToken:
    """The person's own token; another person's is answered as missing."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != owner.id:
        raise NotFound("There is no such token.")
    return token


def revoke_token(session, owner: User, token_id: int) -> ApiToken:
    token = owned_token(session, owner, token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record_audit_event(session, owner, "api_token.revoked", "api_token", token.id)
    return token


def revoke_all_tokens(session: Session, actor: User | None, owner: User, reason: str) -> int:
    """Revoke every live token of ``owner`` (their account was reactivated or its password reset), each audited."""
    live = list(
        session.scalars(
            sa.select(ApiToken)
            .where(ApiToken.user_id == owner.id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.id)
            .with_for_update()
        )
    )
    now = utcnow()
    for token in live:
        token.revoked_at = now
        session.flush()
        record_audit_event(
            session, actor, "api_token.revoked", "api_token", token.id, {"reason": reason}, related={"user": owner.id}
        )
    return len(live)


def user_for_token(session: Session, secret: str) -> tuple[User, ApiToken, bool] | None:
    """The active person behind a bearer token, or None. It only reads (authentication runs outside the write lock).

    The third value says whether the token's use is due to be audited (at most hourly per token): the
    caller then records it with ``note_token_use`` in a write transaction.
    """
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == _hash(secret)))
    if token is None or token.revoked_at is not None:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.is_active_account:
        return None
    return user, token, _use_due(token)


def _use_due(token: ApiToken) -> bool:
    return token.last_used_at is None or utcnow() - token.last_used_at >= USE_AUDIT_INTERVAL


def note_token_use(session: Session, token: ApiToken, user: User) -> bool | None:
    """Audit a token's use if it is still due, deciding again under the write lock (the caller commits).

    True when recorded, False when another call recorded it meanwhile, None when the token was revoked or
    its owner's account closed since ``user_for_token`` found it.
    """
    locked = session.scalar(sa.select(ApiToken).where(ApiToken.id == token.id).with_for_update())
    if locked is None or locked.revoked_at is not None or not user.is_active_account:
        return None
    if not _use_due(locked):
        return False
    locked.last_used_at = utcnow()
    record_audit_event(session, user, "api_token.used", "api_token", locked.id)
    return True
