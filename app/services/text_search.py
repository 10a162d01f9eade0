"""Substring search over people and devices, answered from the indexes migration ``0019_search`` made.

Every search here means "contains what was typed, ignoring case", with ``%`` and ``_`` taken literally.
On SQLite a phrase of three characters or more is looked up in the FTS5 trigram tables (see
``app.models.search_index``); shorter text, which no trigram can answer, is compared row by row. On
PostgreSQL the same ``lower(column) LIKE`` comparison is answered by the ``pg_trgm`` GIN indexes.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.orm import Session

from app.models import PersonalDevice, RegisteredImei, User

# A trigram index can only answer text with at least one trigram in it.
SHORTEST_INDEXED = 3
IMEI_LENGTH = 15
_USERS_SEARCH = sa.table("users_search", sa.column("rowid"))
_DEVICES_SEARCH = sa.table("devices_search", sa.column("rowid"))


def searchable(text: str) -> str:
    """What was typed, trimmed and without NUL characters (neither SQLite's FTS5 nor PostgreSQL take them)."""
    return text.replace("\x00", "").strip()


def escape_like(text: str) -> str:
    """``text`` for a LIKE pattern with backslash as the escape: a typed % or _ matches itself."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(column: sa.ColumnElement | so.InstrumentedAttribute, text: str) -> sa.ColumnElement[bool]:
    """``column`` holds ``text``, ignoring case, in the form the trigram indexes answer."""
    return sa.func.lower(column).like(f"%{escape_like(text.lower())}%", escape="\\")


def fts_phrase(text: str) -> str:
    """An FTS5 phrase of ``text`` (a double quote inside it doubled): with the trigram tokenizer, a substring."""
    return '"' + text.replace('"', '""') + '"'


def _use_fts(session: Session, text: str) -> bool:
    return session.get_bind().dialect.name == "sqlite" and len(text) >= SHORTEST_INDEXED


def _fts_rowids(table: sa.TableClause, query: str) -> sa.Select:
    return sa.select(table.c.rowid).where(sa.literal_column(table.name).op("MATCH")(query))


def people_matching(session: Session, text: str, *, with_email: bool) -> sa.ColumnElement[bool]:
    """A condition on ``User``: the name (or the email too) contains ``text``."""
    if _use_fts(session, text):
        columns = "{display_name email}" if with_email else "display_name"
        return User.id.in_(_fts_rowids(_USERS_SEARCH, f"{columns} : {fts_phrase(text)}"))
    conditions = [contains(User.display_name, text)]
    if with_email:
        conditions.append(contains(User.email, text))
    return sa.or_(*conditions)


def device_ids_matching(session: Session, text: str, imei_digits: str = "") -> sa.CompoundSelect:
    """The ids of devices whose owner's name, make, model or serial contains ``text``, or (given
    ``imei_digits``) one of whose IMEIs contains those digits."""
    owners = sa.select(User.id).where(people_matching(session, text, with_email=False))
    parts: list[sa.Select] = [sa.select(PersonalDevice.id).where(PersonalDevice.owner_id.in_(owners))]
    if _use_fts(session, text):
        parts.append(_fts_rowids(_DEVICES_SEARCH, f"{{make model serial}} : {fts_phrase(text)}"))
    else:
        columns = (PersonalDevice.make, PersonalDevice.model, PersonalDevice.serial)
        parts.append(sa.select(PersonalDevice.id).where(sa.or_(*(contains(column, text) for column in columns))))
    if imei_digits:
        parts.append(_devices_with_imei_holding(session, imei_digits))
    return sa.union(*parts)


def _devices_with_imei_holding(session: Session, digits: str) -> sa.Select:
    if len(digits) >= IMEI_LENGTH:
        # Only an equal IMEI holds a whole IMEI's digits: the primary key answers.
        return sa.select(RegisteredImei.device_id).where(RegisteredImei.device_id.is_not(None), RegisteredImei.imei == digits)
    if _use_fts(session, digits):
        return _fts_rowids(_DEVICES_SEARCH, f"imeis : {fts_phrase(digits)}")
    return sa.select(RegisteredImei.device_id).where(
        RegisteredImei.device_id.is_not(None), RegisteredImei.imei.like(f"%{digits}%")
    )
