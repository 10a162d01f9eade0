"""Routing: who hears about a request (approvers on duty, delegates, away status, escalation minutes)."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.models import (
    Role,
    User,
)
from app.models.settings import ApproverStatus
from app.services.accounts import users_with_role
from app.services.audit import record_audit_event
from app.services.errors import Forbidden, ValidationFailed
from app.services.permissions.common import DELEGATE_IDS, ESCALATION_MINUTES
from app.services.settings import get_setting, set_setting

# Routing: who hears about a request --------------------------------------------------------------


def is_away(session: Session, user: User) -> bool:
    status = session.get(ApproverStatus, user.id)
    return bool(status and status.away)


def approvers_on_duty(session: Session) -> list[User]:
    away_ids = set(session.scalars(sa.select(ApproverStatus.user_id).where(ApproverStatus.away.is_(True))))
    return [user for user in users_with_role(session, Role.APPROVER) if user.id not in away_ids]


def delegates(session: Session) -> list[User]:
    """The delegates named in the settings who are still active approvers."""
    ids = [int(i) for i in get_setting(session, DELEGATE_IDS.key) or []]
    if not ids:
        return []
    people = session.scalars(sa.select(User).where(User.id.in_(ids), User.is_active_account.is_(True)))
    return sorted((u for u in people if u.has_role(Role.APPROVER)), key=lambda u: u.display_name)


def new_request_recipients(session: Session, requester: User) -> list[User]:
    """Approvers on duty; if all are away, the delegates; failing both, every approver (someone must hear)."""
    for group in (approvers_on_duty, delegates, lambda s: users_with_role(s, Role.APPROVER)):
        recipients = [user for user in group(session) if user.id != requester.id]
        if recipients:
            return recipients
    return []


def escalation_recipients(session: Session, requester: User) -> list[User]:
    """The delegates; with none named, every approver, away or not."""
    for group in (delegates, lambda s: users_with_role(s, Role.APPROVER)):
        recipients = [user for user in group(session) if user.id != requester.id]
        if recipients:
            return recipients
    return []


def set_away(session: Session, actor: User, away: bool) -> None:
    """An approver marks themselves away (requests go to others) or back on duty."""
    if not actor.has_role(Role.APPROVER):
        raise Forbidden("Only approvers have an away setting.")
    status = session.get(ApproverStatus, actor.id)
    if status is None:
        status = ApproverStatus(user_id=actor.id, away=False)
        session.add(status)
    if status.away == away:
        return
    status.away = away
    status.changed_at = utcnow()
    session.flush()
    record_audit_event(session, actor, "approver.away" if away else "approver.back", "user", actor.id)


def set_delegates(session: Session, actor: User, user_ids: Iterable[int]) -> list[User]:
    """Name the delegates (approvers, e.g. the deputy head and the DSL). Approvers and admins may."""
    if not actor.has_role(Role.APPROVER, Role.ADMIN):
        raise Forbidden("Only approvers and admins choose the delegates.")
    ids = sorted({int(i) for i in user_ids})
    people = list(session.scalars(sa.select(User).where(User.id.in_(ids)))) if ids else []
    if len(people) != len(ids) or any(not u.is_active_account or not u.has_role(Role.APPROVER) for u in people):
        raise ValidationFailed(
            "Delegates must be approvers.",
            {"delegates": ["Choose delegates from the active approvers; give someone the approver role first."]},
        )
    set_setting(session, actor, DELEGATE_IDS.key, ids)
    return people


def escalation_minutes(session: Session) -> int:
    return int(get_setting(session, ESCALATION_MINUTES.key))


def set_escalation_minutes(session: Session, actor: User, minutes: int) -> None:
    if not actor.has_role(Role.APPROVER, Role.ADMIN):
        raise Forbidden("Only approvers and admins change the escalation time.")
    if not 1 <= minutes <= 120:
        raise ValidationFailed("Choose between 1 and 120 minutes.", {"escalation_minutes": ["Choose between 1 and 120 minutes."]})
    set_setting(session, actor, ESCALATION_MINUTES.key, minutes)
