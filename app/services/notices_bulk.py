"""Notices for many people in one statement, and approvers found as ids (issue 13).

Writing one notice per approver through the ORM costs one INSERT each on SQLite (the ORM cannot batch
an INSERT ... RETURNING whose rows it must match back), and loading every approver as a ``User`` with
their roles costs more than the request it tells them about. Here the notices go in as one multi-row
INSERT ... RETURNING, and the recipients of a new request are chosen with id-only queries, so a
request POST issues the same statements whether the school has one approver or forty.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import make_transient_to_detached

from app.clock import utcnow
from app.models import Notification, Role, User, UserRole


def insert_notices(session, user_ids: Iterable[int], *, kind: str, title: str, body: str, url: str) -> list[Notification]:
    """One notice per id (in the order given, each id once), written with a single INSERT.

    The returned notices are persistent in ``session`` (no second write, no reload), as if the ORM had
    flushed them.
    """
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return []
    now = utcnow()
    values = {"kind": kind, "title": title[:120], "body": body[:500], "url": url[:255], "created_at": now, "read_at": None}
    rows = session.execute(
        sa.insert(Notification)
        .values([{"user_id": user_id, **values} for user_id in ids])
        .returning(Notification.id, Notification.user_id)
    ).all()
    id_of = {user_id: notice_id for notice_id, user_id in rows}
    notices = []
    for user_id in ids:
        notice = Notification(id=id_of[user_id], user_id=user_id, **values)
        make_transient_to_detached(notice)
        session.add(notice)
        notices.append(notice)
    return notices


def active_ids(session, user_ids: Iterable[int]) -> list[int]:
    """The ids whose accounts are active, in the order given."""
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return []
    active = set(session.scalars(sa.select(User.id).where(User.id.in_(wanted), User.is_active_account.is_(True))))
    return [user_id for user_id in wanted if user_id in active]


def approver_ids(session, *, on_duty_only: bool = False, among: Iterable[int] | None = None) -> list[int]:
    """Active approvers' ids by name; only those not marked away, or only those `among` some ids, if asked."""
    from app.models import ApproverStatus

    query = (
        sa.select(User.id)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == Role.APPROVER.value, User.is_active_account.is_(True))
        .order_by(User.display_name, User.id)
    )
    if on_duty_only:
        away = sa.select(ApproverStatus.user_id).where(ApproverStatus.away.is_(True))
        query = query.where(User.id.not_in(away))
    if among is not None:
        query = query.where(User.id.in_(list(among)))
    return list(session.scalars(query))


def new_request_recipient_ids(session, requester_id: int, delegate_ids: list[int]) -> list[int]:
    """As ``permissions.new_request_recipients``, as ids: approvers on duty; if all are away, the
    delegates still approving; failing both, every approver. Never the requester."""
    groups = (
        lambda: approver_ids(session, on_duty_only=True),
        lambda: approver_ids(session, among=delegate_ids) if delegate_ids else [],
        lambda: approver_ids(session),
    )
    for group in groups:
        recipients = [user_id for user_id in group() if user_id != requester_id]
        if recipients:
            return recipients
    return []
