"""Home, notices, privacy notice, my data, and the PWA files (manifest, service worker, offline page)."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, current_app, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.access import public
from app.assets import asset_url, asset_version, precached_files
from app.clock import utcnow
from app.database import ping
from app.devices.forms import ConfirmForm
from app.extensions import db
from app.models import Role
from app.navigation import register_nav
from app.permissions.forms import DecisionForm
from app.read_audit import record_read
from app.services import devices, notifications, permissions, policy, retention, school_logo
from app.services import home as home_data
from app.services.audit import record_audit_event
from app.services.personal_data import export_person

bp = Blueprint("main", __name__)
register_nav("Home", "main.home", order=0)


@bp.get("/")
@login_required
def home():
    """What to do now: decisions waiting (approvers), loans due (office), the current permission (staff)."""
    is_approver = current_user.has_role(Role.APPROVER)
    is_office = current_user.has_role(Role.OFFICE)
    pending = permissions.pending_requests(db.session) if is_approver else []
    return render_template(
        "main/home.html",
        devices=devices.devices_of(db.session, current_user),
        notices=notifications.notices_for(db.session, current_user, limit=5),
        pending=pending,
        decision_forms={r.id: DecisionForm(prefix=f"r{r.id}") for r in pending},
        current=home_data.current_permissions(db.session, current_user, utcnow()),
        waiting=home_data.waiting_requests_of(db.session, current_user),
        has_push=home_data.has_push(db.session, current_user),
        overdue=home_data.overdue_loans(db.session) if is_office else [],
        due_today=home_data.loans_due_today(db.session) if is_office else [],
        confirm=ConfirmForm(),
    )


@bp.get("/more")
@login_required
def more():
    """Every navigation item, for phones whose tab bar holds only the main tasks."""
    return render_template("main/more.html")


@bp.get("/notices")
@login_required
def notices():
    notices = notifications.notices_for(db.session, current_user)
    return render_template(
        "main/notices.html",
        notices=notices,
        subjects=home_data.notice_requests(db.session, notices),
        is_new=home_data.is_new,
        request_state=home_data.request_state,
        confirm=ConfirmForm(),
    )


@bp.post("/notices/read")
@login_required
def mark_notices_read():
    if ConfirmForm().validate_on_submit():
        count = notifications.mark_all_read(db.session, current_user)
        if count:
            record_audit_event(db.session, current_user, "notices.read", "user", current_user.id, {"count": count})
        db.session.commit()
    return redirect(url_for("main.notices"))


@bp.get("/privacy")
@public
def privacy():
    return render_template("main/privacy.html", periods=retention.published_periods(db.session))


@bp.get("/my-data")
@login_required
def my_data():
    return render_template("main/my_data.html", acceptances=policy.acceptances_of(db.session, current_user))


@bp.get("/my-data/download")
@login_required
def my_data_download():
    record_read("personal_data.downloaded", "user", current_user.id, {"by": "self"})
    body = json.dumps(export_person(db.session, current_user), indent=2, ensure_ascii=False)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="lanyard-my-data.json"'},
    )


@bp.get("/offline")
@public
def offline():
    response = current_app.make_response(render_template("main/offline.html"))
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/manifest.webmanifest")
@public
def manifest():
    body = {
        "name": f"Lanyard · {current_app.config['SCHOOL_NAME']}",
        "short_name": "Lanyard",
        "description": "Staff phones, classroom device permission and school equipment.",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#1d4f91",
        "lang": "en-GB",
        "icons": [
            {"src": asset_url("icons/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": asset_url("icons/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": asset_url("icons/icon-maskable-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
        ],
    }
    response = current_app.response_class(json.dumps(body), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/sw.js")
@public
def service_worker():
    """The worker is served from the root so its scope is the whole app."""
    with open(f"{current_app.static_folder}/js/sw.js", encoding="utf-8") as handle:
        source = handle.read()
    shell = [url_for("main.offline")] + [asset_url(name) for name in precached_files()]
    source = source.replace("__VERSION__", asset_version()).replace("__SHELL__", json.dumps(shell))
    response = current_app.response_class(source, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/school-logo/<digest>", endpoint="school_logo")
@public
def school_logo_image(digest: str):
    """The logo by its SHA-256: a new logo is a new address, so this one may be cached for ever."""
    logo = school_logo.logo_by_digest(db.session, digest)
    if logo is None:
        abort(404)
    response = Response(logo.data, mimetype=logo.content_type)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["Content-Disposition"] = "inline"
    return response


@bp.get("/healthz")
@public
def healthz():
    """Up when the database answers. When it does not, the database error handler answers 503 JSON
    (``{"status": "unavailable"}``, with Retry-After) for this path, as for every other."""
    ping(db.session)
    return {"status": "ok", "database": "ok"}
