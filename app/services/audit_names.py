"""Names for the audit page, read in one batch per page, and each event's details as labelled fields.

A person, device, item of equipment or area that has since been erased reads as such ("a device since
erased"); the stored event is untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import format_date, format_datetime, format_time, to_local
from app.models import (
    Area,
    AreaRule,
    AssetKind,
    AuditEvent,
    AuditLink,
    DeviceKind,
    PermissionRequest,
    PersonalDevice,
    PolicyVersion,
    RequestReason,
    SchoolAsset,
    User,
)

ERASED_PERSON = "a person since erased"
ERASED_DEVICE = "a device since erased"
ERASED_ASSET = "an item of equipment since erased"
ERASED_AREA = "an area since erased"
# Details that name people or things by id: looked up in the page's batch like the subject.
PERSON_KEYS = ("borrower_id", "person_id", "approver_id", "user_id")
AREA_KEYS = ("area_id", "moved_to_area_id")


@dataclass
class Names:
    """Every name a page of events needs, read in one batch."""

    people: dict[int, str] = field(default_factory=dict)
    devices: dict[int, tuple[int, str]] = field(default_factory=dict)
    assets: dict[int, str] = field(default_factory=dict)
    areas: dict[int, str] = field(default_factory=dict)
    requests: dict[int, tuple[int, str, int]] = field(default_factory=dict)
    policies: dict[int, str] = field(default_factory=dict)
    links: dict[int, dict[str, list[str]]] = field(default_factory=dict)

    def person(self, user_id: object) -> str:
        key = as_id(user_id)
        return self.people.get(key, ERASED_PERSON) if key is not None else ERASED_PERSON

    def device(self, device_id: object) -> str:
        """Mr B Clarke's iPhone 13."""
        found = self.devices.get(as_id(device_id) or 0)
        if found is None:
            return ERASED_DEVICE
        return f"{possessive(self.person(found[0]))} {found[1]}"

    def asset(self, asset_id: object) -> str:
        return self.assets.get(as_id(asset_id) or 0, ERASED_ASSET)

    def area(self, area_id: object) -> str:
        return self.areas.get(as_id(area_id) or 0, ERASED_AREA)


def as_id(value: object) -> int | None:
    """An id as stored in an event (an int, or the text of one); None for anything else."""
    if isinstance(value, int):
        return value
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) < 12 else None


def possessive(name: str) -> str:
    """Mr B Clarke's, Mrs E Evans's (the school's house style adds 's to every name)."""
    return f"{name}'s"


def when(value: object, beside: datetime | None = None) -> str:
    """A stored ISO time as 10:40 on the event's own day, else 12/12/2026 10:40; a date as 12/12/2026."""
    if not isinstance(value, str) or not value:
        return "an unknown time"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if len(value) == 10:
        return format_date(date.fromisoformat(value))
    if beside is not None and to_local(moment).date() == to_local(beside).date():
        return format_time(moment)
    return format_datetime(moment)


FIELD_LABELS = {
    "approved_until": "Approved until",
    "wanted_until": "Asked until",
    "area_id": "Area",
    "area_ids": "Areas",
    "moved_to_area_id": "Moved to",
    "borrower_id": "Borrower",
    "person_id": "Person",
    "approver_id": "Approver",
    "user_id": "Person",
    "notified_user_ids": "Told",
    "imei_last4": "IMEI ends in",
    "note_given": "Note given",
    "due_on": "Due back",
    "review_date": "Review by",
    "starts_on": "From",
    "ends_on": "To",
    "end_date": "Last day",
    "personal_device_id": "Device",
    "asset_id": "Equipment",
    "on": "On",
    "pdf": "PDF attached",
    "via": "Through",
    "from": "Before",
    "to": "After",
    "label": "Version",
}
# Internal numbers a reader has no use for (the CSV export keeps them).
HIDDEN_FIELDS = {
    "loan_id",
    "token_id",
    "message_id",
    "identity_id",
    "standing_permission_id",
    "replaced_by_request_id",
    "scim_token",
}
_PERSON_LIST_KEYS = ("notified_user_ids",)
_TIME_KEYS = ("approved_until", "wanted_until", "due_on", "review_date", "starts_on", "ends_on", "end_date", "on", "before")


def _ids(values: Iterable[object]) -> set[int]:
    return {found for found in (as_id(v) for v in values) if found is not None}


def _wanted(events: list[AuditEvent], details: dict[int, dict], links: dict[int, dict[str, list[str]]]) -> dict[str, set[int]]:
    """Every id the page's sentences and fields will name, by table."""
    wanted: dict[str, list[object]] = {
        "user": [],
        "personal_device": [],
        "asset": [],
        "area": [],
        "permission_request": [],
        "policy_version": [],
    }
    for event in events:
        wanted["user"].append(event.actor_id)
        if event.subject_type in wanted:
            wanted[event.subject_type].append(event.subject_id)
        for kind, refs in links.get(event.seq, {}).items():
            if kind in wanted:
                wanted[kind].extend(refs)
        found = details[event.seq]
        wanted["user"].extend(found.get(key) for key in PERSON_KEYS)
        wanted["user"].extend(v for key in _PERSON_LIST_KEYS for v in found.get(key) or [] if isinstance(found.get(key), list))
        wanted["area"].extend(found.get(key) for key in AREA_KEYS)
        wanted["area"].extend(found.get("area_ids") or [] if isinstance(found.get("area_ids"), list) else [])
        wanted["personal_device"].append(found.get("personal_device_id"))
        kind, _dash, ref = str(found.get("device") or "").partition("-")
        if kind in ("personal", "asset"):
            wanted["personal_device" if kind == "personal" else "asset"].append(ref)
        wanted["asset"].append(found.get("asset_id"))
    return {kind: _ids(values) for kind, values in wanted.items()}


def names_for(session: Session, events: list[AuditEvent], details: dict[int, dict]) -> Names:
    """Read every name a page of events needs: a fixed handful of queries, whatever the page holds."""
    names = Names()
    seqs = [event.seq for event in events]
    if not seqs:
        return names
    for seq, kind, ref in session.execute(sa.select(AuditLink.seq, AuditLink.kind, AuditLink.ref).where(AuditLink.seq.in_(seqs))):
        names.links.setdefault(seq, {}).setdefault(kind, []).append(ref)
    wanted = _wanted(events, details, names.links)
    if wanted["permission_request"]:
        rows = session.execute(
            sa.select(
                PermissionRequest.id, PermissionRequest.requester_id, PermissionRequest.device_label, PermissionRequest.area_id
            ).where(PermissionRequest.id.in_(wanted["permission_request"]))
        )
        for row in rows:
            names.requests[row.id] = (row.requester_id, row.device_label, row.area_id)
            wanted["user"].add(row.requester_id)
            wanted["area"].add(row.area_id)
    if wanted["personal_device"]:
        rows = session.execute(
            sa.select(PersonalDevice.id, PersonalDevice.owner_id, PersonalDevice.make, PersonalDevice.model).where(
                PersonalDevice.id.in_(wanted["personal_device"])
            )
        )
        for row in rows:
            names.devices[row.id] = (row.owner_id, f"{row.make} {row.model}".strip())
            wanted["user"].add(row.owner_id)
    if wanted["user"]:
        names.people = dict(
            session.execute(sa.select(User.id, User.display_name).where(User.id.in_(wanted["user"]))).tuples().all()
        )
    if wanted["asset"]:
        rows = session.execute(
            sa.select(SchoolAsset.id, SchoolAsset.name, SchoolAsset.tag).where(SchoolAsset.id.in_(wanted["asset"]))
        )
        names.assets = {row.id: f"{row.name} ({row.tag})" for row in rows}
    if wanted["area"]:
        names.areas = dict(session.execute(sa.select(Area.id, Area.name).where(Area.id.in_(wanted["area"]))).tuples().all())
    if wanted["policy_version"]:
        labels = sa.select(PolicyVersion.id, PolicyVersion.label).where(PolicyVersion.id.in_(wanted["policy_version"]))
        names.policies = dict(session.execute(labels).tuples().all())
    return names


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if value is None or value == "":
        return "none"
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{_label(str(k))}: {_plain(v)}" for k, v in sorted(value.items())) or "none"
    return str(value).replace("_", " ") if isinstance(value, str) and value.isidentifier() else str(value)


def _label(key: str) -> str:
    return FIELD_LABELS.get(key, key.replace("_", " ").capitalize())


def field_value(key: str, value: object, names: Names, occurred_at: datetime | None = None) -> str:
    """One detail as a person reads it: people, areas and devices by name, times in the school's zone."""
    if key in PERSON_KEYS:
        return names.person(value)
    if key in _PERSON_LIST_KEYS and isinstance(value, list):
        return ", ".join(names.person(v) for v in value) or "nobody"
    if key in AREA_KEYS:
        return names.area(value)
    if key == "area_ids" and isinstance(value, list):
        return ", ".join(names.area(v) for v in value)
    if key == "personal_device_id":
        return names.device(value)
    if key == "asset_id":
        return names.asset(value) if value else "none"
    if key == "kind" and isinstance(value, str):
        return _kind_label(value)
    if key == "device" and isinstance(value, str) and value.partition("-")[0] in ("personal", "asset"):
        kind, _dash, ref = value.partition("-")
        return names.device(ref) if kind == "personal" else names.asset(ref)
    if key == "rule" and value in AreaRule.__members__.values():
        return AreaRule(str(value)).label
    if key == "reason" and value in RequestReason.__members__.values():
        return RequestReason(str(value)).label
    if key in _TIME_KEYS and isinstance(value, str):
        return when(value, occurred_at)
    return _plain(value)


def _kind_label(value: str) -> str:
    for kinds in (DeviceKind, AssetKind):
        if value in kinds.__members__.values():
            return kinds(value).label
    return _plain(value)


def fields_for(details: dict, names: Names, occurred_at: datetime | None = None) -> list[tuple[str, str]]:
    """The details as (label, value) pairs in the order of their labels, internal numbers left out."""
    fields = [
        (_label(key), field_value(key, value, names, occurred_at)) for key, value in details.items() if key not in HIDDEN_FIELDS
    ]
    return sorted(fields)
