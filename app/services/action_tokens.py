"""One-time action tokens: the credential behind a notification's Approve and Deny buttons.

A token decides only the subject it names, only as the approver it was issued to, only once and only
before it expires. Only its SHA-256 is stored, so a copy of the database cannot approve anything.
The deciding itself belongs to the feature that owns the subject: it registers a handler with
``register_action_handler(subject_type, fn)``; ``fn(session, approver_user, subject_id, action)``
makes the decision (and its own audit event) or raises a domain error to refuse. It may also register
``register_subject_lock(subject_type, fn)``: ``fn(session, subject_id)`` locks the subject's row, which
redeeming takes before the token rows and the audit append, the order every other decision path follows
(CONTRIBUTING.md, Transactions).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.database import rows_changed
from app.models import ActionToken, User
from app.services.audit import record_audit_event
from app.services.errors import Forbidden

ACTIONS = ("approve", "deny")
ActionHandler = Callable[[Session, User, int, str], object]
SubjectLock = Callable[[Session, int], object]
_handlers: dict[str, ActionHandler] = {}
_subject_locks: dict[str, SubjectLock] = {}


class ActionRefused(Forbidden):
    """The token cannot decide anything; the audited refusal is kept."""

    slug = "action-refused"
    title = "This button can no longer decide"
    keep_changes = True


def register_action_handler(subject_type: str, handler: ActionHandler) -> None:
    """Let ``handler`` decide subjects of ``subject_type`` when one of their tokens is redeemed."""
    _handlers[subject_type] = handler


def register_subject_lock(subject_type: str, lock: SubjectLock) -> None:
    """Let ``lock(session, subject_id)`` lock a subject's row before its tokens are spent.

    A missing subject is not the lock's business: it locks nothing and the handler refuses.
    """
    _subject_locks[subject_type] = lock


def unregister_action_handler(subject_type: str) -> None:
    _handlers.pop(subject_type, None)


def action_handler_for(subject_type: str) -> ActionHandler | None:
    """The handler registered for ``subject_type`` (tests swap it and put it back)."""
    return _handlers.get(subject_type)


def has_action_handler(subject_type: str) -> bool:
    return subject_type in _handlers


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_action_tokens(
    session: Session, approver: User, subject_type: str, subject_id: int, lifetime: timedelta
) -> dict[str, str]:
    """Make one approve and one deny token for ``approver``; return them in the clear (never stored)."""
    expires_at = utcnow() + lifetime
    tokens = {}
    for action in ACTIONS:
        token = secrets.token_urlsafe(32)
        session.add(
            ActionToken(
                token_hash=token_hash(token),
                approver_id=approver.id,
                subject_type=subject_type,
                subject_id=subject_id,
                action=action,
                expires_at=expires_at,
            )
        )
        tokens[action] = token
    session.flush()
    return tokens


@dataclass(frozen=True)
class Redemption:
    approver: User
    subject_type: str
    subject_id: int
    action: str
    outcome: object


def _refuse(session: Session, reason: str, message: str, found: ActionToken | None, action: str) -> ActionRefused:
    record_audit_event(
        session,
        found.approver if found is not None else None,
        "push.action_refused",
        found.subject_type if found is not None else "action_token",
        found.subject_id if found is not None else "",
        {"reason": reason, "action": action if action in ACTIONS else "other"},
    )
    return ActionRefused(message)


def redeem(session: Session, token: str, action: str, presenter: User | None = None) -> Redemption:
    """Spend ``token`` on ``action`` and let the subject's handler decide, all in the caller's transaction.

    ``presenter`` is the signed-in person when the call carried a session: a token is refused if anyone
    but its own approver presents it. Every refusal is audited and nothing is decided.
    """
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise _refuse(session, "malformed", "This button is not valid.", None, action)
    found = session.scalar(sa.select(ActionToken).where(ActionToken.token_hash == token_hash(token)))
    if found is None:
        raise _refuse(session, "unknown", "This button is not valid.", None, action)
    # The lock order of every decision path: the subject's row, then its tokens, then the audit append
    # (every refusal below is audited, so the locks come first). The other way round, a press racing
    # a tap in the inbox deadlocks on PostgreSQL.
    lock_subject = _subject_locks.get(found.subject_type)
    if lock_subject is not None:
        lock_subject(session, found.subject_id)
    session.scalars(
        sa.select(ActionToken.id)
        .where(
            ActionToken.approver_id == found.approver_id,
            ActionToken.subject_type == found.subject_type,
            ActionToken.subject_id == found.subject_id,
        )
        .order_by(ActionToken.id)
        .with_for_update()
    ).all()
    session.refresh(found)
    if action != found.action:
        raise _refuse(session, "wrong_action", "This button was made for a different decision.", found, action)
    if found.used_at is not None:
        raise _refuse(session, "already_used", "This button has already been used.", found, action)
    if found.expires_at <= utcnow():
        raise _refuse(session, "expired", "This button has expired; open Lanyard to decide.", found, action)
    approver = found.approver
    if presenter is not None and presenter.id != approver.id:
        raise _refuse(session, "wrong_approver", "This button was sent to someone else.", found, action)
    if not approver.is_active_account:
        raise _refuse(session, "approver_inactive", "This account can no longer decide.", found, action)
    handler = _handlers.get(found.subject_type)
    if handler is None:
        raise _refuse(session, "no_handler", "This kind of request cannot be decided from a notification.", found, action)
    # Spend the token first, conditionally, so two concurrent presses cannot both pass.
    spent = session.execute(
        sa.update(ActionToken)
        .where(ActionToken.id == found.id, ActionToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if rows_changed(spent) != 1:
        raise _refuse(session, "already_used", "This button has already been used.", found, action)
    # The twin token (the other decision) dies with this one.
    session.execute(
        sa.update(ActionToken)
        .where(
            ActionToken.approver_id == found.approver_id,
            ActionToken.subject_type == found.subject_type,
            ActionToken.subject_id == found.subject_id,
            ActionToken.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.refresh(found)
    record_audit_event(
        session,
        approver,
        "push.action_redeemed",
        found.subject_type,
        found.subject_id,
        {"action": action, "token_id": found.id},
    )
    outcome = handler(session, approver, found.subject_id, action)
    return Redemption(approver, found.subject_type, found.subject_id, action, outcome)
