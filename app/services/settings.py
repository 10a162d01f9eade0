"""School settings kept in the ``school_settings`` table: JSON values under namespaced keys.

Each feature declares its keys and defaults with ``define_setting``, so the admin settings page can
list them all later; reading a key nobody set gives its default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from app.models import SchoolSetting, User
from app.services.audit import record_audit_event


@dataclass(frozen=True)
class SettingDefinition:
    key: str
    default: object
    label: str


_definitions: dict[str, SettingDefinition] = {}


def define_setting(key: str, default: object, label: str) -> SettingDefinition:
    """Declare a setting and its default (idempotent, so modules may be imported twice)."""
    definition = SettingDefinition(key, default, label)
    _definitions[key] = definition
    return definition


def defined_settings() -> list[SettingDefinition]:
    return sorted(_definitions.values(), key=lambda item: item.key)


def get_setting(session, key: str):
    """The stored value, or the declared default."""
    row = session.get(SchoolSetting, key)
    if row is None:
        definition = _definitions.get(key)
        return definition.default if definition else None
    return json.loads(row.value)


def set_setting(session, actor: User | None, key: str, value) -> None:
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
    record_audit_event(session, actor, "setting.changed", "setting", key, {"from": before, "to": value})
