"""The week view of bookings (issue 17, item 5): per asset, per kit and per kind of equipment; a table on a
wide screen, a list per day on a phone, and a printout for the staffroom. Each route: parse, authorise,
call one service, respond (they only read)."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, render_template, request, url_for
from flask_login import current_user, login_required

from app.extensions import db
from app.models import AssetKind
from app.services import booking_week

bp = Blueprint("booking_week", __name__)


def _week():
    return booking_week.parse_week(request.args.get("week", "")[:20])


def book_url(view: booking_week.WeekView, cell: booking_week.Cell, form: str = "") -> str:
    """The booking form, filled in for a free cell (the asset or kit, the day and the period). ``form`` is
    the form's address when the caller has it already: a week has 30 cells, and url_for for each was a
    tenth of the page."""
    thing = f"kit-{view.subject_id}" if view.scope == "kit" else f"asset-{cell.free_ids[0] if cell.free_ids else ''}"
    query = urlencode({"thing": thing, "day": cell.day.isoformat(), "period": cell.period.label})
    return f"{form or url_for('bookings.new')}?{query}"


def _page(view: booking_week.WeekView, endpoint: str, **arguments):
    form = url_for("bookings.new")
    for row in view.days:
        for cell in row.cells:
            cell.url = book_url(view, cell, form) if cell.bookable else ""
    return render_template(
        "bookings/week.html",
        view=view,
        periods=[(p.label, f"{p.starts:%H:%M}\u2013{p.ends:%H:%M}") for p in view.periods],
        week_url=lambda week: url_for(endpoint, week=week, **arguments),
        this_week=url_for(endpoint, **arguments),
    )


@bp.get("/bookings/week")
@login_required
def choose():
    """Which week to look at: the bookable assets, kits and kinds the person may see."""
    return render_template(
        "bookings/week_choose.html", choices=booking_week.week_choices(db.session, current_user), kinds=AssetKind
    )


@bp.get("/bookings/week/asset/<int:asset_id>")
@login_required
def asset(asset_id: int):
    view = booking_week.asset_week(db.session, current_user, asset_id, _week())
    return _page(view, "booking_week.asset", asset_id=asset_id)


@bp.get("/bookings/week/kit/<int:kit_id>")
@login_required
def kit(kit_id: int):
    view = booking_week.kit_week(db.session, current_user, kit_id, _week())
    return _page(view, "booking_week.kit", kit_id=kit_id)


@bp.get("/bookings/week/kind/<kind>")
@login_required
def kind(kind: str):
    view = booking_week.kind_week(db.session, current_user, kind, _week())
    return _page(view, "booking_week.kind", kind=kind)
