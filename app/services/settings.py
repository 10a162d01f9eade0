"""School settings kept in the ``school_settings`` table: JSON values under namespaced keys.

Each feature declares its keys and defaults with ``define_setting``, so the admin settings page can
list them all later; reading a key nobody set gives its default.

A page reads several settings (school name, time zone, logo, ...): the first read loads every stored
value in one query and keeps them in ``session.info`` until the transaction ends, so a page costs one
settings query however many it reads, and a change made elsewhere is seen by the next transaction.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.models import SchoolSetting, User
from app.services.audit import record_audit_event

_SNAPSHOT = "lanyard.settings"

T = TypeVar("T")


@dataclass(frozen=True)
class SettingDefinition(Generic[T]):
    key: str
    default: T
    label: str
    help: str = ""


_definitions: dict[str, SettingDefinition[Any]] = {}


def define_setting(key: str, default: T, label: str, help: str = "") -> SettingDefinition[T]:  # noqa: A002
    """Declare a setting, its default and the help shown under it (idempotent, so modules may be imported twice)."""
    definition = SettingDefinition(key, default, label, help)
    _definitions[key] = definition
    return definition


def defined_settings() -> list[SettingDefinition[Any]]:
    return sorted(_definitions.values(), key=lambda item: item.key)


_EVERY_SETTING = sa.select(SchoolSetting.key, SchoolSetting.value)  # built once: read on every page


def _stored(session: Session) -> dict[str, Any]:
    """Every stored setting, decoded, read once per transaction (a page asks for a dozen)."""
    snapshot = session.info.get(_SNAPSHOT)
    if snapshot is None:
        with session.no_autoflush:  # read from anywhere, even while a service is half-way building rows
            rows = session.execute(_EVERY_SETTING).tuples().all()
        snapshot = {key: json.loads(value) for key, value in rows}
        session.info[_SNAPSHOT] = snapshot
    return snapshot


@event.listens_for(Session, "after_soft_rollback")
def _forget_snapshot(session: Session, *_args) -> None:
    session.info.pop(_SNAPSHOT, None)


@event.listens_for(Session, "after_commit")
def _forget_snapshot_at_the_end(session: Session) -> None:
    """Forget at the end of the transaction, not when a savepoint inside it is released (SQLAlchemy
    says ``after_commit`` for both): what the savepoint wrote is still this transaction's (issue 13)."""
    if not session.in_nested_transaction():
        _forget_snapshot(session)


def get_setting(session: Session, key: str):
    """The stored value, or the declared default."""
    stored = _stored(session)
    if key not in stored:
        definition = _definitions.get(key)
        return definition.default if definition else None
    value = stored[key]
    return copy.deepcopy(value) if isinstance(value, list | dict) else value


def set_setting(session: Session, actor: User | None, key: str, value) -> None:
    """Store a value and audit the change (old and new values; settings never hold personal data)."""
    before = get_setting(session, key)
    if before == value:
        return
    row = session.get(SchoolSetting, key)
    if row is None:
        row = SchoolSetting(key=key)
        session.add(row)
    row.value = json.dumps(value, sort_keys=True)
    row.updated_by_id = actor.id if actor is not None else None
    session.flush()
    _stored(session)[key] = json.loads(row.value)
    record_audit_event(session, actor, "setting.changed", "setting", key, {"from": before, "to": value})
