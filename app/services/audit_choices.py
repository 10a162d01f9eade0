"""The audit page's filters by name: the suggestions a search box offers, and what a typed name means.

Nobody filters the log by an id number: a person, device, item of equipment or area is chosen by
name (suggested from a <datalist>), and the name is turned into the ids the log's links hold here.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Area, PersonalDevice, SchoolAsset, User
from app.services.audit_log import people_matching
from app.services.audit_names import possessive
from app.services.audit_sentences import GROUPS, LABELS

MAX_MATCHES = 20


def person_options(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(sa.select(User.display_name, User.id).order_by(User.display_name, User.id))
    return [(name, user_id) for name, user_id in rows.tuples()]


def device_options(session: Session) -> list[tuple[str, int]]:
    """Mr B Clarke's iPhone 13, for every registered device (retired ones too: their history stays)."""
    rows = session.execute(
        sa.select(PersonalDevice.id, PersonalDevice.make, PersonalDevice.model, User.display_name)
        .join(User, User.id == PersonalDevice.owner_id)
        .order_by(User.display_name, PersonalDevice.id)
    )
    return [(f"{possessive(row.display_name)} {row.make} {row.model}".strip(), row.id) for row in rows]


def asset_options(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(
        sa.select(SchoolAsset.name, SchoolAsset.tag, SchoolAsset.id).order_by(SchoolAsset.name, SchoolAsset.tag)
    )
    return [(f"{row.name} ({row.tag})", row.id) for row in rows]


def area_options(session: Session) -> list[tuple[str, int]]:
    return [(name, area_id) for name, area_id in session.execute(sa.select(Area.name, Area.id).order_by(Area.name)).tuples()]


OPTIONS = {"person": person_options, "device": device_options, "asset": asset_options, "area": area_options}


def suggestions(session: Session) -> dict[str, list[str]]:
    """The names each filter box suggests (each name once)."""
    return {kind: list(dict.fromkeys(label for label, _id in read(session))) for kind, read in OPTIONS.items()}


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
    found = matching(OPTIONS[kind](session), typed)
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
