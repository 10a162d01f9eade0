"""The one notification service: every notice is written in-app; delivery channels plug in here.

A channel (Web Push, later) registers a function that is called with the notices written in the
same transaction; it must only queue work (an outbox row), never send before the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.database import rows_changed
from app.models import Notification, User
from app.services.notices_bulk import insert_notices

Channel = Callable[[Session, list[Notification], dict], None]
_channels: list[Channel] = []


def register_channel(channel: Channel) -> None:
    if channel not in _channels:
        _channels.append(channel)


def notify(
    session: Session,
    recipients: Iterable[User],
    *,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    extra: dict | None = None,
) -> list[Notification]:
    """Write one in-app notice per recipient and hand them to every delivery channel."""
    ids = [user.id for user in recipients if user.is_active_account]
    return notify_ids(session, ids, kind=kind, title=title, body=body, url=url, extra=extra)


def notify_ids(
    session, user_ids: Iterable[int], *, kind: str, title: str, body: str = "", url: str = "", extra: dict | None = None
) -> list[Notification]:
    """As ``notify``, for people named by id (whose accounts the caller knows to be active): one INSERT
    for every notice, however many people (app/services/notices_bulk.py)."""
    session.flush()  # what the caller wrote goes first, as before
    notices = insert_notices(session, user_ids, kind=kind, title=title, body=body, url=url)
    for channel in _channels:
        channel(session, notices, extra or {})
    return notices


def notices_for(session: Session, user: User, limit: int = 50) -> list[Notification]:
    return list(
        session.scalars(
            sa.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id.desc()).limit(limit)
        )
    )


def unread_count(session: Session, user: User) -> int:
    return session.scalar(sa.select(sa.func.count()).where(Notification.user_id == user.id, Notification.read_at.is_(None))) or 0


def mark_all_read(session: Session, user: User) -> int:
    result = session.execute(
        sa.update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None)).values(read_at=utcnow())
    )
    return rows_changed(result)
