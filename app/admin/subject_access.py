"""Admin: a subject access export for any person, leavers included (audited, without its contents)."""

from __future__ import annotations

import json

from flask import Response, redirect, url_for
from flask_login import current_user

from app.access import roles_required
from app.admin.routes import _person, bp
from app.devices.forms import ConfirmForm
from app.extensions import db
from app.models import Role
from app.services.audit import record_audit_event
from app.services.personal_data import export_person


@bp.post("/staff/<int:user_id>/export")
@roles_required(Role.ADMIN)
def subject_access_export(user_id: int):
    """Everything held about the person as JSON, for a subject access request. A POST, so no link or
    prefetch can make one, and the export is recorded before it is sent."""
    person = _person(user_id)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("admin.person", user_id=person.id))
    body = json.dumps(export_person(db.session, person), indent=2, ensure_ascii=False)
    record_audit_event(
        db.session,
        current_user,
        "personal_data.exported",
        "user",
        person.id,
        {"for": "subject access request", "active": person.is_active_account},
    )
    db.session.commit()
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="lanyard-subject-access-{person.id}.json"'},
    )
