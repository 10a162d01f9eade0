"""The audit page's filters by name: the suggestions a search box offers, and what a typed name means.

Nobody filters the log by an id number: a person, device, item of equipment or area is chosen by
name (suggested from a <datalist>), and the name is turned into the ids the log's links hold here.

A school's few hundred names go into the page; a trust's 5,000 people, 20,000 devices and 50,000
assets do not: above ``INLINE_LIMIT`` a box's suggestions are asked for as the person types
(``names_like``), and a typed name is looked up through the search indexes, never by reading every row.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Area, PersonalDevice, SchoolAsset, User
from app.services import text_search
from app.services.audit_log import people_matching
from app.services.audit_names import possessive
from app.services.audit_sentences import GROUPS, LABELS

MAX_MATCHES = 20
# Up to this many names a box's suggestions are written into the page; above it they are asked for.
INLINE_LIMIT = 500
KINDS = ("person", "device", "asset", "area")
_DEVICE_LABEL = re.compile(r"^(?P<owner>.+?)'s (?P<device>.+)$")
_ASSET_LABEL = re.compile(r"^(?P<name>.*)\((?P<tag>[^()]*)\)\s*$")


Options = list[tuple[str, int]]


def person_options(session: Session, where: sa.ColumnElement[bool] | None = None, limit: int | None = None) -> Options:
    query = sa.select(User.display_name, User.id).order_by(User.display_name, User.id).limit(limit)
    rows = session.execute(query if where is None else query.where(where))
    return [(name, user_id) for name, user_id in rows.tuples()]


def device_options(session: Session, where: sa.ColumnElement[bool] | None = None, limit: int | None = None) -> Options:
    """Mr B Clarke's iPhone 13, for every registered device (retired ones too: their history stays)."""
    query = (
        sa.select(PersonalDevice.id, PersonalDevice.make, PersonalDevice.model, User.display_name)
        .join(User, User.id == PersonalDevice.owner_id)
        .order_by(User.display_name, PersonalDevice.id)
        .limit(limit)
    )
    rows = session.execute(query if where is None else query.where(where))
    return [(f"{possessive(row.display_name)} {row.make} {row.model}".strip(), row.id) for row in rows]


def asset_options(session: Session, where: sa.ColumnElement[bool] | None = None, limit: int | None = None) -> Options:
    query = sa.select(SchoolAsset.name, SchoolAsset.tag, SchoolAsset.id).order_by(SchoolAsset.name, SchoolAsset.tag).limit(limit)
    rows = session.execute(query if where is None else query.where(where))
    return [(f"{row.name} ({row.tag})", row.id) for row in rows]


def area_options(session: Session, where: sa.ColumnElement[bool] | None = None, limit: int | None = None) -> Options:
    query = sa.select(Area.name, Area.id).order_by(Area.name).limit(limit)
    return [(name, area_id) for name, area_id in session.execute(query if where is None else query.where(where)).tuples()]


OPTIONS: dict[str, Callable[..., Options]] = {
    "person": person_options,
    "device": device_options,
    "asset": asset_options,
    "area": area_options,
}
_IDS = {"person": User.id, "device": PersonalDevice.id, "asset": SchoolAsset.id, "area": Area.id}


def _candidates(session: Session, kind: str, typed: str) -> sa.ColumnElement[bool]:
    """A condition that keeps every row whose label could contain ``typed``, answered by the indexes."""
    if kind == "person":
        return text_search.people_matching(session, typed, with_email=False)
    if kind == "device":
        label = _DEVICE_LABEL.match(typed)
        if label:  # "Mr B Clarke's iPhone 13": a device of whoever has that name
            owners = sa.select(User.id).where(text_search.people_matching(session, label.group("owner"), with_email=False))
            return sa.or_(PersonalDevice.owner_id.in_(owners), _device_text(session, typed))
        return _device_text(session, typed)
    if kind == "asset":
        label = _ASSET_LABEL.match(typed)
        if label and label.group("tag").strip():
            return sa.func.lower(SchoolAsset.tag) == label.group("tag").strip().lower()
        return sa.or_(text_search.contains(SchoolAsset.name, typed), text_search.contains(SchoolAsset.tag, typed))
    return text_search.contains(Area.name, typed)


def _device_text(session: Session, typed: str) -> sa.ColumnElement[bool]:
    """The owner's name, make, model or serial holds it (indexed), or it spans make and model ("Samsung Galaxy")."""
    return sa.or_(
        PersonalDevice.id.in_(text_search.device_ids_matching(session, typed)),
        text_search.contains(PersonalDevice.make + " " + PersonalDevice.model, typed),
    )


def too_many_to_list(session: Session, kind: str) -> bool:
    """More than ``INLINE_LIMIT`` rows: asks for the row after the limit (a short walk of the primary key)
    rather than counting a trust's 50,000 rows on every load of the page."""
    row_id = _IDS[kind]
    return session.scalar(sa.select(row_id).order_by(row_id).offset(INLINE_LIMIT).limit(1)) is not None


def suggestions(session: Session) -> dict[str, list[str] | None]:
    """The names each filter box suggests (each name once); None where there are too many to list,
    and the box asks for them as the person types."""
    return {
        kind: None if too_many_to_list(session, kind) else list(dict.fromkeys(label for label, _id in read(session)))
        for kind, read in OPTIONS.items()
    }


def names_like(session: Session, kind: str, typed: str) -> list[str]:
    """Up to ``MAX_MATCHES`` names of one kind containing what was typed, for a box's suggestions."""
    wanted = text_search.searchable(typed)[:100]
    if kind not in OPTIONS or len(wanted) < 2:
        return []
    options = OPTIONS[kind](session, _candidates(session, kind, wanted), limit=MAX_MATCHES * 5)
    folded = " ".join(wanted.split()).casefold()
    return list(dict.fromkeys(label for label, _id in options if folded in label.casefold()))[:MAX_MATCHES]


def matching(options: list[tuple[str, int]], typed: str) -> list[int]:
    """The ids a typed name means: an exact name (as suggested) alone, else every name containing it."""
    wanted = " ".join(typed.split()).casefold()
    exact = [option_id for label, option_id in options if label.casefold() == wanted]
    if exact:
        return exact
    return [option_id for label, option_id in options if wanted in label.casefold()][:MAX_MATCHES]


def ids_named(session: Session, kind: str, typed: str) -> list[int] | None:
    """None when nothing was typed (no filter); an empty list when the name matches nothing."""
    if not typed.strip():
        return None
    wanted = text_search.searchable(typed)
    if too_many_to_list(session, kind):
        options = OPTIONS[kind](session, _candidates(session, kind, " ".join(wanted.split())), limit=1000)
    else:
        options = OPTIONS[kind](session)
    found = matching(options, typed)
    if kind == "person" and not found:
        return people_matching(session, typed)  # part of an email address finds its owner too
    return found


def action_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The kinds of event by their labels, grouped: each group's value is its prefix, each kind its action."""
    groups = []
    for prefix, group in GROUPS.items():
        kinds = sorted((label, action) for action, label in LABELS.items() if action.startswith(prefix))
        groups.append((group, [(prefix, f"All: {group.lower()}")] + [(action, label) for label, action in kinds]))
    return groups
