"""Classroom permission pages: areas and posters (admin), asking at the door (J2), deciding (J3), cover, Now."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from wtforms import SelectChoice

from app.access import roles_required
from app.clock import local_today, utcnow
from app.confirmations import ask_first, confirmation_page, confirmed
from app.devices.forms import ConfirmForm
from app.extensions import db
from app.forms_support import refused
from app.models import Area, AreaRule, Role
from app.navigation import register_nav
from app.permissions import demo  # noqa: F401  (registers the demo seeder)
from app.permissions.forms import AreaForm, CoverForm, DecisionForm, RequestForm, ReviewForm, StandingPermissionForm
from app.services import accounts, areas, home, permissions
from app.services.accounts import users_with_role
from app.services.errors import Conflict, Forbidden
from app.services.inbox_pages import page_number, pending_page

bp = Blueprint("permissions", __name__)
register_nav("Scan a poster", "permissions.scan", (Role.STAFF,), order=5, tab_label="Scan")
register_nav("My requests", "permissions.my_requests", (Role.STAFF,), order=15)
register_nav("Approvals", "permissions.inbox", (Role.APPROVER,), order=20)
register_nav("Now", "permissions.now", (Role.APPROVER, Role.OFFICE), order=25)
register_nav("Standing", "permissions.standing", (Role.APPROVER,), order=30)
register_nav("Cover", "permissions.cover", (Role.APPROVER,), order=35)
register_nav("Areas", "permissions.areas", (Role.ADMIN,), order=70)


# Areas and posters (admin) ------------------------------------------------------------------------


@bp.get("/admin/areas", endpoint="areas")
@roles_required(Role.ADMIN)
def area_list():
    return render_template("permissions/areas.html", areas=areas.list_areas(db.session))


@bp.route("/admin/areas/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def area_new():
    form = AreaForm()
    if form.validate_on_submit():
        with refused(form) as refusal:
            area = areas.create_area(db.session, current_user, name=form.name.data or "", rule=form.rule.data or "")
        if refusal:
            return render_template("permissions/area_form.html", form=form, area=None), 422
        db.session.commit()
        flash(f"{area.name} is added. Print its poster and put it up by the door.", "success")
        return redirect(url_for("permissions.area_edit", area_id=area.id))
    return render_template("permissions/area_form.html", form=form, area=None), 422 if form.errors else 200


@bp.route("/admin/areas/<int:area_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def area_edit(area_id: int):
    area = areas.get_area(db.session, area_id)
    form = AreaForm(obj=None if request.method == "POST" else area)
    if form.validate_on_submit():
        with refused(form) as refusal:
            areas.update_area(db.session, current_user, area, name=form.name.data or "", rule=form.rule.data or "")
        if refusal:
            return render_template("permissions/area_form.html", form=form, area=area, confirm=ConfirmForm()), 422
        db.session.commit()
        flash("Changes saved.", "success")
        return redirect(url_for("permissions.area_edit", area_id=area.id))
    status = 422 if form.errors else 200
    return render_template("permissions/area_form.html", form=form, area=area, confirm=ConfirmForm()), status


@bp.route("/admin/areas/<int:area_id>/rotate", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def area_rotate(area_id: int):
    area = areas.get_area(db.session, area_id)
    if request.method == "GET":
        return confirmation_page(
            title=f"New poster code for {area.name}?",
            consequences=f"Every poster for {area.name} now on a wall stops working at once. Staff cannot ask from "
            "them until you print the new poster and put it up.",
            button="Make a new poster code",
            cancel_url=url_for("permissions.area_edit", area_id=area.id),
        )
    if not confirmed():
        return ask_first()
    if ConfirmForm().validate_on_submit():
        areas.rotate_poster(db.session, current_user, area)
        db.session.commit()
        flash(f"{area.name} has a new poster code. Old posters no longer work: print the new one now.", "success")
    return redirect(url_for("permissions.area_edit", area_id=area.id))


def _poster(area: Area) -> dict:
    url = areas.poster_url(current_app.config["BASE_URL"], area)
    return {"area": area, "url": url, "qr": areas.qr_svg(url, f"QR code to ask permission for {area.name}")}


@bp.get("/admin/areas/<int:area_id>/poster")
@roles_required(Role.ADMIN)
def area_poster(area_id: int):
    return render_template("permissions/posters.html", posters=[_poster(areas.get_area(db.session, area_id))])


@bp.get("/admin/areas/posters")
@roles_required(Role.ADMIN)
def area_posters():
    return render_template("permissions/posters.html", posters=[_poster(a) for a in areas.list_areas(db.session)])


# Asking at the door (J2) --------------------------------------------------------------------------


def _request_form(area: Area) -> RequestForm:
    form = RequestForm()
    options = permissions.device_options(db.session, current_user)
    if area.rule == AreaRule.SCHOOL_DEVICES_ONLY.value:
        options = [o for o in options if o.school_device]
    form.device.choices = [SelectChoice(o.key, o.label) for o in options]
    form.device_hints = {o.key: o.hint for o in options}
    if request.method == "GET":
        form.device.data = home.usual_device_key(db.session, current_user, [o.key for o in options]) or None
    return form


_POSTER_PATH = re.compile(r"^/a/([A-Za-z0-9_-]{1,64})$")


def _poster_path(link: str) -> str:
    """This site's door page for a poster's link; "" for anything else (never a foreign address)."""
    parts = urlsplit(link.strip())
    ours = {urlsplit(current_app.config["BASE_URL"]).netloc, request.host}
    match = _POSTER_PATH.match(parts.path)
    if parts.scheme not in ("http", "https") or parts.netloc not in ours or match is None:
        return ""
    return url_for("permissions.ask", token=match.group(1))


@bp.get("/scan")
@login_required
def scan():
    """The in-app door poster scanner; without a camera, the poster's link can be pasted."""
    link = request.args.get("link", "")
    error = ""
    if link:
        path = _poster_path(link)
        if path:
            return redirect(path)
        error = "That is not a link from one of this school's Lanyard door posters, so it was not opened."
    return render_template("permissions/scan.html", link=link, error=error), 422 if error else 200


def _door_page(area: Area, form: RequestForm, status: int = 200):
    return render_template("permissions/ask.html", area=area, form=form), status


@bp.get("/a/<token>")
@login_required
def ask(token: str):
    """The poster's QR lands here. Reading it changes nothing."""
    area = areas.area_for_token(db.session, token)
    if area is None:
        return render_template("permissions/poster_out_of_date.html"), 404
    return _door_page(area, _request_form(area))


@bp.post("/a/<token>")
@login_required
def ask_submit(token: str):
    area = areas.area_for_token(db.session, token)
    if area is None:
        return render_template("permissions/poster_out_of_date.html"), 404
    form = _request_form(area)
    if not form.validate_on_submit():
        return _door_page(area, form, 422)
    with refused(form) as refusal:
        asked = permissions.request_permission(
            db.session,
            current_user,
            area,
            device_key=form.device.data or "",
            reason=form.reason.data or "",
            reason_other=form.reason_other.data or "",
            duration=form.duration.data or "",
            until=form.until.data or "",
            emergency=bool(form.emergency.data),
            emergency_reason=form.emergency_reason.data or "",
        )
    if refusal.error is not None:
        error = refusal.error
        form.refusal = error.message if isinstance(error, permissions.AreaRuleRefusal | permissions.AlreadyAsked) else ""
        form.first_request_url = getattr(error, "request_url", "")
        if isinstance(error, permissions.AlreadyAsked):
            form.device.errors = []  # said once, in the callout with its link
        return _door_page(area, form, 409 if isinstance(error, permissions.AlreadyAsked) else 422)
    db.session.commit()
    if asked.emergency:
        flash("Emergency override recorded. The head and the designated safeguarding lead have been told.", "success")
    return redirect(url_for("permissions.request_status", request_id=asked.id))


@bp.get("/requests")
@login_required
def my_requests():
    return render_template(
        "permissions/my_requests.html",
        requests=permissions.requests_of(db.session, current_user),
        standing=[
            s
            for s in permissions.standing_permissions_of(db.session, current_user)
            if s.ended_at is None and s.ends_on >= local_today()
        ],
    )


@bp.get("/requests/<int:request_id>")
@login_required
def request_status(request_id: int):
    asked = permissions.own_request(db.session, current_user, request_id)
    return render_template(
        "permissions/status.html", asked=asked, status_text=permissions.describe_status(asked), confirm=ConfirmForm()
    )


def _requester_action(request_id: int, action, done: str):
    permissions.own_request(db.session, current_user, request_id)
    if ConfirmForm().validate_on_submit():
        with refused(None, Conflict) as refusal:
            action(db.session, current_user, request_id)
        if not refusal:
            db.session.commit()
            flash(done, "success")
    return redirect(url_for("permissions.request_status", request_id=request_id))


@bp.post("/requests/<int:request_id>/end")
@login_required
def request_end(request_id: int):
    return _requester_action(request_id, permissions.end_permission, "Thank you: your permission has ended.")


@bp.post("/requests/<int:request_id>/withdraw")
@login_required
def request_withdraw(request_id: int):
    return _requester_action(request_id, permissions.withdraw, "Your request is withdrawn.")


# Deciding (J3) ------------------------------------------------------------------------------------


def _decision_form(request_id: int) -> DecisionForm:
    return DecisionForm(prefix=f"r{request_id}")


def _review_form(request_id: int) -> ReviewForm:
    return ReviewForm(prefix=f"e{request_id}")


def _inbox_page(
    forms: dict[int, DecisionForm] | None = None, status: int = 200, review_forms: dict[int, ReviewForm] | None = None
):
    inbox_page = pending_page(db.session, page_number(request.args.get("page")))
    g.pending_count = inbox_page.total  # the Approvals tab's count, not asked for twice
    pending = inbox_page.items
    to_review = permissions.emergencies_to_review(db.session)
    forms = forms or {}
    review_forms = review_forms or {}
    return render_template(
        "permissions/inbox.html",
        pending=pending,
        inbox_page=inbox_page,
        forms={r.id: forms.get(r.id) or _decision_form(r.id) for r in pending},
        to_review=to_review,
        review_forms={r.id: review_forms.get(r.id) or _review_form(r.id) for r in to_review},
        away=permissions.is_away(db.session, current_user),
    ), status


def _approval_page(asked, form: DecisionForm | None = None, review_form: ReviewForm | None = None, status: int = 200):
    return render_template(
        "permissions/approval.html",
        asked=asked,
        form=form or _decision_form(asked.id),
        review=review_form or _review_form(asked.id),
    ), status


@bp.get("/approvals")
@roles_required(Role.APPROVER)
def inbox():
    return _inbox_page()


@bp.get("/approvals/<int:request_id>")
@roles_required(Role.APPROVER)
def approval(request_id: int):
    """One request with one-tap Approve and Deny: where a notification's tap lands (iOS shows no actions)."""
    asked = permissions.visible_request(db.session, current_user, request_id)
    return _approval_page(asked)


@bp.post("/approvals/<int:request_id>/decision")
@roles_required(Role.APPROVER)
def decision(request_id: int):
    asked = permissions.visible_request(db.session, current_user, request_id)
    form = _decision_form(request_id)
    back_to_one = request.form.get("back") == "one"
    # Decided from Home: back to Home (a form with an error is shown again in the inbox, where it lives).
    done_url = url_for("main.home") if request.form.get("back") == "home" else url_for("permissions.inbox")

    def again(status: int):
        if back_to_one:
            return _approval_page(asked, form=form, status=status)
        return _inbox_page({request_id: form}, status)

    if not form.validate_on_submit():
        return again(422)
    with refused(form) as invalid, refused(None, Conflict, Forbidden) as refusal:
        until = permissions.parse_until(form.until.data, utcnow()) if (form.until.data or "").strip() else None
        decided = permissions.decide(
            db.session, current_user, request_id, form.decision.data or "", note=form.note.data or "", until=until
        )
    if invalid:
        return again(422)
    if refusal:
        return redirect(done_url)
    db.session.commit()
    verb = "Approved" if decided.status == "approved" else "Denied"
    flash(f"{verb}: {decided.requester.display_name}, {decided.device_label} in {decided.area.name}.", "success")
    return redirect(done_url)


@bp.post("/approvals/<int:request_id>/review")
@roles_required(Role.APPROVER)
def review(request_id: int):
    """Record the review of an emergency override: justified or not, once, never by its requester."""
    asked = permissions.visible_request(db.session, current_user, request_id)
    form = _review_form(request_id)
    back_to_one = request.form.get("back") == "one"

    def again(status: int):
        if back_to_one:
            return _approval_page(asked, review_form=form, status=status)
        return _inbox_page(status=status, review_forms={request_id: form})

    if not form.validate_on_submit():
        return again(422)
    with refused(form) as invalid, refused(None, Conflict, Forbidden) as refusal:
        reviewed = permissions.review_emergency(
            db.session, current_user, request_id, form.outcome.data or "", note=form.note.data or ""
        )
    if invalid:
        return again(422)
    if refusal:
        return redirect(url_for("permissions.approval", request_id=request_id) if back_to_one else url_for("permissions.inbox"))
    db.session.commit()
    flash(f"Review recorded: {reviewed.requester.display_name}'s emergency override, {reviewed.review_outcome_label}.", "success")
    return redirect(url_for("permissions.approval", request_id=request_id) if back_to_one else url_for("permissions.inbox"))


@bp.get("/now")
@roles_required(Role.APPROVER, Role.OFFICE)
def now():
    active = permissions.active_permissions(db.session, utcnow())
    return render_template("permissions/now.html", active=active, moved=permissions.moved_from(db.session, active), now=utcnow())


# Standing permissions -----------------------------------------------------------------------------


def _standing_form() -> StandingPermissionForm:
    form = StandingPermissionForm()
    people = accounts.active_people(db.session)
    form.person.choices = [SelectChoice(0, "Choose…")] + [
        SelectChoice(p.id, p.display_name) for p in people if p.id != current_user.id
    ]
    devices = permissions.grantable_devices(db.session)
    form.device.choices = [SelectChoice(0, "Any of their devices")] + [
        SelectChoice(d.id, f"{d.owner.display_name}: {d.name}") for d in devices
    ]
    form.areas.choices = [SelectChoice(a.id, a.name) for a in areas.list_areas(db.session) if a.rule != AreaRule.CLOSED.value]
    return form


def _standing_page(form: StandingPermissionForm, status: int = 200):
    return render_template(
        "permissions/standing.html",
        form=form,
        standing=permissions.standing_permissions(db.session),
        confirm=ConfirmForm(),
    ), status


@bp.route("/standing", methods=["GET", "POST"])
@roles_required(Role.APPROVER)
def standing():
    form = _standing_form()
    if request.method == "GET":
        form.starts_on.data = form.starts_on.data or local_today()
    if form.validate_on_submit():
        with refused(form) as refusal:
            granted = permissions.grant_standing_permission(
                db.session,
                current_user,
                person_id=form.person.data,
                personal_device_id=form.device.data or None,
                area_ids=form.areas.data or [],
                starts_on=form.starts_on.data,
                ends_on=form.ends_on.data,
                reason=form.reason.data or "",
            )
        if refusal:
            return _standing_page(form, 422)
        db.session.commit()
        flash(f"Standing permission granted to {granted.person.display_name}.", "success")
        return redirect(url_for("permissions.standing"))
    return _standing_page(form, 422 if form.errors else 200)


@bp.post("/standing/<int:standing_id>/end")
@roles_required(Role.APPROVER)
def standing_end(standing_id: int):
    if ConfirmForm().validate_on_submit():
        with refused(None, Conflict) as refusal:
            ended = permissions.end_standing_permission(db.session, current_user, standing_id)
        if not refusal:
            db.session.commit()
            flash(f"Standing permission for {ended.person.display_name} ended.", "success")
    return redirect(url_for("permissions.standing"))


# Cover: away and delegates ------------------------------------------------------------------------


def _cover_form() -> CoverForm:
    form = CoverForm()
    form.delegates.choices = [SelectChoice(u.id, u.display_name) for u in users_with_role(db.session, Role.APPROVER)]
    return form


def _cover_page(form: CoverForm, status: int = 200):
    return render_template(
        "permissions/cover.html",
        form=form,
        away=permissions.is_away(db.session, current_user),
        on_duty=permissions.approvers_on_duty(db.session),
        confirm=ConfirmForm(),
    ), status


@bp.get("/cover")
@roles_required(Role.APPROVER, Role.ADMIN)
def cover():
    form = _cover_form()
    form.delegates.data = [u.id for u in permissions.delegates(db.session)]
    form.escalation_minutes.data = permissions.escalation_minutes(db.session)
    return _cover_page(form)


@bp.post("/cover")
@roles_required(Role.APPROVER, Role.ADMIN)
def cover_save():
    form = _cover_form()
    if not form.validate_on_submit():
        return _cover_page(form, 422)
    with refused(form) as refusal:
        permissions.set_delegates(db.session, current_user, form.delegates.data or [])
        permissions.set_escalation_minutes(db.session, current_user, form.escalation_minutes.data)
    if refusal:
        return _cover_page(form, 422)
    db.session.commit()
    flash("Cover settings saved.", "success")
    return redirect(url_for("permissions.cover"))


@bp.post("/cover/away")
@roles_required(Role.APPROVER)
def cover_away():
    if ConfirmForm().validate_on_submit():
        away = request.form.get("away") == "1"
        permissions.set_away(db.session, current_user, away)
        db.session.commit()
        flash("You are marked away: new requests go to the others." if away else "You are back on duty.", "success")
    return redirect(url_for("permissions.inbox" if request.form.get("back") == "inbox" else "permissions.cover"))
