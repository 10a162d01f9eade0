"""The people a provisioning system (SCIM) sees: lookups, one-attribute filters, pages and role members.

The SCIM protocol (parsing, resources, errors) stays in ``app/scim``; the queries live here.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Role, User, UserRole
from app.services.accounts import normalise_email
from app.services.errors import NotFound


def _small_id(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 10 else None


def visible_people() -> sa.Select[tuple[User]]:
    """People the provisioning system may see: all but those it deleted (and nobody brought back since)."""
    return sa.select(User).where(sa.or_(User.deprovisioned_at.is_(None), User.is_active_account.is_(True)))


def visible_person(session: Session, user_id: str) -> User:
    """The person with this SCIM id, if the provisioning system may see them, else NotFound."""
    number = _small_id(user_id)
    person = session.scalar(visible_people().where(User.id == number)) if number is not None else None
    if person is None:
        raise NotFound("There is no such user.")
    return person


def where_equal(query: sa.Select[tuple[User]], attribute: str, value: str) -> sa.Select[tuple[User]] | None:
    """``query`` narrowed to ``attribute eq value`` (``attribute`` in lower case); None for an attribute not answered."""
    if attribute in ("username", "emails", "emails.value", 'emails[type eq "work"].value'):
        return query.where(User.email == normalise_email(value))
    if attribute == "externalid":
        return query.where(User.external_id == value)
    if attribute == "id":
        number = _small_id(value)
        return query.where(User.id == (number if number is not None else -1))
    if attribute == "displayname":
        return query.where(User.display_name == value)
    return None


def page_of_people(session: Session, query: sa.Select[tuple[User]], start: int, count: int) -> tuple[int, list[User]]:
    """How many ``query`` finds, and the ``count`` of them from the 1-based ``start``, by id."""
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    people = list(session.scalars(query.order_by(User.id).offset(start - 1).limit(count))) if count else []
    return total, people


def role_members(session: Session, role: Role) -> list[User]:
    """The active people holding ``role``, by id (a SCIM group's members)."""
    return list(
        session.scalars(
            sa.select(User).join(UserRole).where(UserRole.role == role.value, User.is_active_account.is_(True)).order_by(User.id)
        )
    )
