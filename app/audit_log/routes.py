"""The audit log viewer (J5): filters, pages, CSV export and the chain's status."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user

from app.access import roles_required
from app.devices.forms import ConfirmForm
from app.extensions import db
from app.models import Role
from app.navigation import register_nav
from app.read_audit import record_read
from app.services import audit_choices, audit_digest, audit_log, audit_sentences
from app.services.audit import grouped_hash

bp = Blueprint("audit_log", __name__, url_prefix="/audit")
# A nominated governor reads the log too: allegations about the head go to the chair of governors.
READERS = (Role.APPROVER, Role.OFFICE, Role.ADMIN, Role.GOVERNOR)
register_nav("Audit log", "audit_log.index", READERS, order=90)


def heads_path() -> Path:
    return audit_digest.heads_path(current_app.instance_path)


def int_arg(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) < 12 else None


def _date_arg(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, "").strip())
    except ValueError:
        return None


def filters_from_request(by_name: bool = False) -> tuple[audit_log.AuditFilters, dict]:
    """Read the filter form; what was typed is echoed back to the form as typed.

    The page (``by_name``) chooses a device, item of equipment or area by its name; the API by its id.
    """
    typed = {key: request.args.get(key, "")[:100] for key in ("person", "device", "asset", "area", "action", "since", "until")}
    things: dict[str, int | list[int] | None]
    if by_name:
        people = audit_choices.ids_named(db.session, "person", typed["person"])
        things = {kind: audit_choices.ids_named(db.session, kind, typed[kind]) for kind in ("device", "asset", "area")}
    else:
        people = audit_log.people_matching(db.session, typed["person"]) if typed["person"].strip() else None
        things = {kind: int_arg(kind) for kind in ("device", "asset", "area")}
    filters = audit_log.AuditFilters(
        people=people,
        device=things["device"],
        asset=things["asset"],
        area=things["area"],
        action=typed["action"].strip(),
        since=_date_arg("since"),
        until=_date_arg("until"),
    )
    return filters, typed


@bp.get("")
@roles_required(*READERS)
def index():
    filters, typed = filters_from_request(by_name=True)
    events, next_cursor = audit_log.page_of_events(db.session, filters, before=int_arg("before"))
    query = {key: value for key, value in typed.items() if value}
    return render_template(
        "audit_log/index.html",
        events=audit_sentences.describe_page(db.session, events),
        suggestions=audit_choices.suggestions(db.session),
        action_choices=audit_choices.action_choices(),
        next_url=url_for("audit_log.index", before=next_cursor, **query) if next_cursor else None,
        export_url=url_for("audit_log.export", **query),
        typed=typed,
        filtering=bool(query),
        verification=audit_log.latest_verification(db.session),
        heads=audit_log.published_heads(heads_path())[-1:],
        confirm=ConfirmForm(),
    )


@bp.get("/names")
@roles_required(*READERS)
def names():
    """Suggestions for a filter box, as the person types (a trust has too many names to list in the page)."""
    return {"names": audit_choices.names_like(db.session, request.args.get("kind", ""), request.args.get("q", ""))}


@bp.get("/digest")
@roles_required(*READERS)
def digest():
    """Every published head, newest first, to print and keep away from the server."""
    heads = list(reversed(audit_log.published_heads(heads_path())))
    return render_template("audit_log/digest.html", heads=heads, grouped_hash=grouped_hash, as_datetime=datetime.fromisoformat)


@bp.post("/verify")
@roles_required(*READERS)
def verify():
    if ConfirmForm().validate_on_submit():
        report = audit_log.verify_and_record(db.session, current_user, audit_log.published_heads(heads_path()))
        db.session.commit()
        if report.ok:
            flash(f"Verified: all {report.verified_count} events are intact.", "success")
        else:
            flash(f"The chain is broken at event {report.broken_at_seq}: {report.problem}.", "error")
    return redirect(url_for("audit_log.index"))


@bp.get("/export.csv")
@roles_required(*READERS)
def export():
    filters, _typed = filters_from_request(by_name=True)
    record_read("audit.exported", details={"filters": {key: value for key, value in request.args.items() if value}})
    lines = audit_log.export_rows(db.session, filters)
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="lanyard-audit-log.csv"'},
    )
