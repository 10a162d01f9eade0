"""The approvals inbox a page at a time, with the count of all waiting (issue 13).

A page costs the same statements whether 5 or 500 requests wait: one count, one page of rows (with
their joined people, area and device), never the whole queue.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app.models import PermissionRequest, RequestStatus
from app.services.permissions.queries import REQUESTER_AND_AREA

PER_PAGE = 20


@dataclass(frozen=True)
class InboxPage:
    items: list[PermissionRequest]
    total: int
    page: int
    per_page: int = PER_PAGE

    @property
    def has_next(self) -> bool:
        return self.page * self.per_page < self.total

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def first_shown(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.items else 0

    @property
    def last_shown(self) -> int:
        return (self.page - 1) * self.per_page + len(self.items)


def page_number(raw: str | None) -> int:
    """The page asked for in ?page=, 1 for anything that is not a whole number from 1 to 10,000."""
    try:
        number = int(raw or "1")
    except ValueError:
        return 1
    return number if 1 <= number <= 10_000 else 1


# Built once (a statement's cache key is worked out once per statement object): the inbox and the
# Approvals tab's count run them on every visit.
_PENDING_COUNT = (
    sa.select(sa.func.count()).select_from(PermissionRequest).where(PermissionRequest.status == RequestStatus.PENDING.value)
)
_PENDING_PAGE = (
    sa.select(PermissionRequest)
    .options(*REQUESTER_AND_AREA)
    .where(PermissionRequest.status == RequestStatus.PENDING.value)
    .order_by(PermissionRequest.created_at, PermissionRequest.id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
    .offset(sa.bindparam("offset", type_=sa.Integer))
)


def pending_count(session) -> int:
    return session.scalar(_PENDING_COUNT) or 0


def pending_page(session, page: int, per_page: int = PER_PAGE) -> InboxPage:
    """One page of the waiting requests, oldest first, and how many wait in all."""
    total = pending_count(session)
    last_page = max(1, -(-total // per_page))
    page = min(page, last_page)
    items = list(session.scalars(_PENDING_PAGE, {"limit": per_page, "offset": (page - 1) * per_page}).unique())
    return InboxPage(items=items, total=total, page=page, per_page=per_page)
