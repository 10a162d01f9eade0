"""Pupil areas and their QR posters (J6): create, rename, change the rule, rotate the poster token."""

from __future__ import annotations

from dataclasses import dataclass

import qrcode
import sqlalchemy as sa
from qrcode.image.svg import SvgPathImage
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.models import Area, AreaRule, User
from app.services.audit import record_audit_event
from app.services.errors import NotFound, ValidationFailed

RULE_VALUES = {rule.value for rule in AreaRule}


def _validate(session: Session, name: str, rule: str, area_id: int | None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    name = name.strip()
    if not name:
        errors["name"] = ["Enter the area's name as it is known in school, like Year 3 classroom."]
    elif len(name) > 120:
        errors["name"] = ["Use at most 120 characters."]
    else:
        query = sa.select(Area.id).where(sa.func.lower(Area.name) == name.lower())
        if area_id is not None:
            query = query.where(Area.id != area_id)
        if session.scalar(query) is not None:
            errors["name"] = ["There is already an area with this name."]
    if rule not in RULE_VALUES:
        errors["rule"] = ["Choose the area's rule."]
    return errors


def create_area(session: Session, actor: User, *, name: str, rule: str = AreaRule.ASK.value) -> Area:
    """Add a pupil area with a fresh poster token."""
    if errors := _validate(session, name, rule, None):
        raise ValidationFailed("Some details need correcting.", errors)
    area = Area(name=name.strip(), rule=rule)
    session.add(area)
    session.flush()
    record_audit_event(session, actor, "area.created", "area", area.id, {"name": area.name, "rule": area.rule})
    return area


def update_area(session: Session, actor: User, area: Area, *, name: str, rule: str) -> Area:
    """Rename an area or change its rule; the poster token stays (rotate it separately)."""
    if errors := _validate(session, name, rule, area.id):
        raise ValidationFailed("Some details need correcting.", errors)
    changes = {}
    if area.name != name.strip():
        changes["name"] = {"from": area.name, "to": name.strip()}
        area.name = name.strip()
    if area.rule != rule:
        changes["rule"] = {"from": area.rule, "to": rule}
        area.rule = rule
    if changes:
        session.flush()
        record_audit_event(session, actor, "area.updated", "area", area.id, changes)
    return area


def rotate_poster(session: Session, actor: User, area: Area) -> Area:
    """Give the area a new poster token: every printed poster of it stops working at once."""
    from app.models.areas import new_poster_token

    area.poster_token = new_poster_token()
    area.poster_rotated_at = utcnow()
    session.flush()
    record_audit_event(session, actor, "area.poster_rotated", "area", area.id)
    return area


def list_areas(session: Session) -> list[Area]:
    return list(session.scalars(sa.select(Area).order_by(Area.name)))


def get_area(session: Session, area_id: int) -> Area:
    area = session.get(Area, area_id)
    if area is None:
        raise NotFound("There is no such area.")
    return area


_AREA_FOR_TOKEN = sa.select(Area).where(Area.poster_token == sa.bindparam("token"))  # built once: every door visit


def area_for_token(session: Session, token: str) -> Area | None:
    """The area whose current poster carries ``token``; None for a rotated or unknown token."""
    if not token or len(token) > 64:
        return None
    return session.scalar(_AREA_FOR_TOKEN, {"token": token})


def poster_url(base_url: str, area: Area) -> str:
    """The URL printed in the poster's QR code, built from the configured base URL (never the Host header)."""
    return f"{base_url.rstrip('/')}/a/{area.poster_token}"


@dataclass(frozen=True)
class PosterQr:
    """What the poster template needs to draw the code inline; it writes every attribute (autoescaped)."""

    view_box: str
    path: str
    label: str


def qr_svg(data: str, label: str) -> PosterQr:
    """An inline SVG QR code (one path, scaled by CSS to any print size), labelled for screen readers.

    No ``Markup``: the template builds the <svg>, so the area's name in the label is escaped like any text.
    """
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2, image_factory=SvgPathImage)
    code.add_data(data)
    code.make(fit=True)
    image = code.make_image()
    image.to_string()  # lays out the path element
    size = code.modules_count + 2 * code.border
    if image.path is None:
        raise RuntimeError("the QR code image has no path element")
    return PosterQr(view_box=f"0 0 {size} {size}", path=image.path.attrib["d"], label=label)
