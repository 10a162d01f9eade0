"""Staff types and end dates (the end-date job and notice), the staff list filter, and the staff CSV import."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, EndDateNotice, Notification, Role, StaffType, User, UserSession
from app.scheduler import run_timed_jobs
from app.services import staff_import, staff_terms
from app.services.errors import Conflict
from tests.conftest import csrf_token
from tests.factories import make_user, sign_in


def _actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)))


def _set_terms(user: User, staff_type: StaffType, end: date | None) -> None:
    with write_intent():
        staff_terms.set_staff_terms(db.session, None, db.session.get(User, user.id), staff_type=staff_type, end_date=end)
        db.session.commit()


# Parsing -------------------------------------------------------------------------------------------


def test_dates_are_read_as_the_school_writes_them_or_iso():
    assert staff_terms.parse_end_date("31/07/2026") == date(2026, 7, 31)
    assert staff_terms.parse_end_date("2026-07-31") == date(2026, 7, 31)
    assert staff_terms.parse_end_date(" ") is None
    for bad in ("07/31/2026", "31-07-2026", "tomorrow"):
        try:
            staff_terms.parse_end_date(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
    assert staff_terms.parse_staff_type("Supply staff") == StaffType.SUPPLY
    assert staff_terms.parse_staff_type("") == StaffType.EMPLOYEE
    assert staff_terms.parse_staff_type("astronaut") is None


# The end-date job ----------------------------------------------------------------------------------


def test_the_office_is_told_once_and_the_account_ends_after_the_last_day(app, frozen_clock):
    office = make_user(Role.OFFICE, name="Office")
    volunteer = make_user(name="Mr V Olunteer")
    other = app.test_client()
    sign_in(other, volunteer)
    _set_terms(volunteer, StaffType.VOLUNTEER, date(2026, 11, 30))  # the clock stands at 25/11/2026

    run_timed_jobs(db.session, frozen_clock.now, names=["staff.end_dates"])
    run_timed_jobs(db.session, frozen_clock.now, names=["staff.end_dates"])  # idempotent: still one notice
    notices = db.session.scalars(
        sa.select(Notification).where(Notification.user_id == office.id, Notification.kind == "staff.end_date_soon")
    ).all()
    assert len(notices) == 1 and "30/11/2026" in notices[0].title
    assert db.session.scalar(sa.select(sa.func.count()).select_from(EndDateNotice)) == 1

    frozen_clock.set(datetime(2026, 11, 30, 17, 0, tzinfo=UTC))  # the last day itself: still active
    run_timed_jobs(db.session, frozen_clock.now, names=["staff.end_dates"])
    db.session.expire_all()
    assert db.session.get(User, volunteer.id).is_active_account is True

    frozen_clock.set(datetime(2026, 12, 1, 0, 5, tzinfo=UTC))
    run_timed_jobs(db.session, frozen_clock.now, names=["staff.end_dates"])
    run_timed_jobs(db.session, frozen_clock.now, names=["staff.end_dates"])
    db.session.expire_all()
    ended = db.session.get(User, volunteer.id)
    assert ended.is_active_account is False
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(UserSession.user_id == volunteer.id, UserSession.ended_at.is_(None)))
        == 0
    )
    assert other.get("/").status_code == 302
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "user.deactivated")).all()
    assert len(events) == 1 and json.loads(events[0].details)["reason"] == "end_date" and events[0].actor_id is None
    assert _actions().count("user.end_date_notice_sent") == 1


def test_a_changed_end_date_gets_its_own_notice_and_the_setting_sets_how_early(app, frozen_clock):
    office = make_user(Role.OFFICE)
    supply = make_user()
    with write_intent():
        from app.services.settings import set_setting

        set_setting(db.session, None, "staff.end_date_notice_days", 2)
        db.session.commit()
    _set_terms(supply, StaffType.SUPPLY, date(2026, 11, 30))
    run_timed_jobs(db.session, frozen_clock.now, names=["staff.end_dates"])
    assert db.session.scalar(sa.select(sa.func.count()).where(Notification.user_id == office.id)) == 0
    _set_terms(supply, StaffType.SUPPLY, date(2026, 11, 26))
    run_timed_jobs(db.session, frozen_clock.now, names=["staff.end_dates"])
    _set_terms(supply, StaffType.SUPPLY, date(2026, 11, 27))
    run_timed_jobs(db.session, frozen_clock.now, names=["staff.end_dates"])
    assert db.session.scalar(sa.select(sa.func.count()).where(Notification.user_id == office.id)) == 2


def test_reactivating_after_the_end_date_clears_it(app, frozen_clock):
    admin = make_user(Role.ADMIN)
    leaver = make_user()
    _set_terms(leaver, StaffType.CONTRACTOR, date(2026, 11, 25))
    frozen_clock.set(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    run_timed_jobs(db.session, frozen_clock.now, names=["staff.end_dates"])
    client = app.test_client()
    sign_in(client, admin)
    token = csrf_token(client, f"/admin/staff/{leaver.id}")
    client.post(f"/admin/staff/{leaver.id}/reactivate", data={"csrf_token": token})
    run_timed_jobs(db.session, frozen_clock.now, names=["staff.end_dates"])
    db.session.expire_all()
    back = db.session.get(User, leaver.id)
    assert back.is_active_account is True and back.end_date is None


# Admin pages ---------------------------------------------------------------------------------------


def test_invite_and_edit_set_the_staff_type_and_end_date_and_the_list_filters(client, frozen_clock):
    admin = make_user(Role.ADMIN)
    sign_in(client, admin)
    token = csrf_token(client, "/admin/staff/invite")
    answer = client.post(
        "/admin/staff/invite",
        data={
            "csrf_token": token,
            "display_name": "Ms S Upply",
            "email": "s.upply@school.test",
            "staff_type": "supply",
            "end_date": "2027-03-31",
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]  # to the page showing the link
    person = db.session.scalar(sa.select(User).where(User.email == "s.upply@school.test"))
    assert person.staff_type == "supply" and person.end_date == date(2027, 3, 31)
    listed = client.get("/admin/staff?type=supply").get_data(as_text=True)
    assert "Ms S Upply" in listed and "31/03/2027" in listed and admin.email not in listed
    assert "Ms S Upply" not in client.get("/admin/staff?type=volunteer").get_data(as_text=True)
    assert admin.email in client.get("/admin/staff?type=nonsense").get_data(as_text=True)
    token = csrf_token(client, f"/admin/staff/{person.id}")
    past = client.post(
        f"/admin/staff/{person.id}",
        data={"csrf_token": token, "display_name": "Ms S Upply", "staff_type": "volunteer", "end_date": "2020-01-01"},
    )
    assert past.status_code == 422 and "deactivate" in past.get_data(as_text=True)
    saved = client.post(
        f"/admin/staff/{person.id}",
        data={"csrf_token": token, "display_name": "Ms S Upply", "staff_type": "volunteer", "end_date": ""},
    )
    assert saved.status_code == 302
    db.session.expire_all()
    changed = db.session.get(User, person.id)
    assert changed.staff_type == "volunteer" and changed.end_date is None
    assert "user.staff_terms_changed" in _actions()


def test_scim_token_page_shows_the_secret_once_and_revokes(client):
    sign_in(client, make_user(Role.ADMIN))
    token = csrf_token(client, "/admin/provisioning")
    made = client.post("/admin/provisioning", data={"csrf_token": token, "name": "Entra ID"})
    page = made.get_data(as_text=True)
    assert made.status_code == 200 and "lny_scim_" in page and "/scim/v2" in page
    secret = page.split('id="scim-secret" type="text" readonly value="')[1].split('"')[0]
    assert client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert secret not in client.get("/admin/provisioning").get_data(as_text=True)
    from app.models import ScimToken

    row = db.session.scalar(sa.select(ScimToken))
    client.post(f"/admin/provisioning/{row.id}/revoke", data={"csrf_token": token})
    assert client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


# The CSV import ------------------------------------------------------------------------------------

CSV = """name,email,roles,staff type,end date
Mrs A Patel,a.patel@school.test,approver|admin,employee,
Mr New Volunteer,new.vol@school.test,,volunteer,31/12/2026
Mr B Clarke,b.clarke@school.test,office;staff,supply,2027-01-31
"""


def _school():
    admin = make_user(Role.ADMIN, name="Admin", email="admin@school.test")
    patel = make_user(Role.APPROVER, Role.ADMIN, name="Mrs A Patel", email="a.patel@school.test")
    clarke = make_user(name="Mr B Clarke", email="b.clarke@school.test")
    leaver = make_user(name="Mr L Eaver", email="l.eaver@school.test")
    return admin, patel, clarke, leaver


def test_preview_names_new_changed_and_leaving_without_changing_anything(app, frozen_clock):
    admin, _patel, clarke, leaver = _school()
    before = len(_actions())
    plan = staff_import.plan_import(db.session, admin, CSV)
    assert [p.record.email for p in plan.new] == ["new.vol@school.test"]
    assert [(p.user.id, p.fields) for p in plan.changed] == [(clarke.id, ["roles", "staff_type", "end_date"])]
    assert plan.unchanged == 1
    assert [u.id for u in plan.leaving] == [leaver.id]  # the admin importing is never offered as leaving
    db.session.rollback()
    assert len(_actions()) == before


def test_apply_is_all_or_nothing_and_audited(app, frozen_clock):
    admin, _patel, clarke, leaver = _school()
    plan = staff_import.plan_import(db.session, admin, CSV)
    with write_intent():
        result = staff_import.apply_import(db.session, admin, CSV, plan.digest, deactivate_missing=True)
        db.session.commit()
    assert len(result.created) == 1 and result.changed == 1 and result.deactivated == 1
    db.session.expire_all()
    new = db.session.scalar(sa.select(User).where(User.email == "new.vol@school.test"))
    assert new.staff_type == "volunteer" and new.end_date == date(2026, 12, 31)
    assert db.session.get(User, clarke.id).roles == {Role.STAFF, Role.OFFICE}
    assert db.session.get(User, leaver.id).is_active_account is False
    actions = _actions()
    assert actions.count("user.imported") == 3 and actions.count("staff.imported") == 1
    assert "user.invite_issued" in actions


def test_apply_refuses_another_file_or_a_staff_list_that_changed(app, frozen_clock):
    admin, _patel, _clarke, _leaver = _school()
    plan = staff_import.plan_import(db.session, admin, CSV)
    db.session.rollback()
    for text in (CSV.replace("supply", "volunteer"), CSV):
        if text == CSV:
            make_user(name="Someone new since", email="since@school.test")  # the leaving list is not what was previewed
        with write_intent():
            try:
                staff_import.apply_import(db.session, admin, text, plan.digest, deactivate_missing=True)
            except Conflict:
                db.session.rollback()
            else:
                raise AssertionError("applied something that was not previewed")
    assert db.session.scalar(sa.select(User).where(User.email == "new.vol@school.test")) is None


def test_bad_rows_are_named_and_nothing_is_applied(client, frozen_clock):
    admin, *_ = _school()
    sign_in(client, admin)
    bad = (
        "name,email,roles,staff type,end date\n"
        '=HYPERLINK("http://x"),x@school.test,,,\n'
        "Mr Ok,not-an-email,,,\n"
        "Ms Role,role@school.test,headteacher,,\n"
        "Ms Type,type@school.test,,astronaut,\n"
        "Ms Date,date@school.test,,,31/02/2027\n"
        "Ms Past,past@school.test,,,01/01/2020\n"
        "Ms Good,good@school.test,,,\n"
        "Ms Twice,GOOD@school.test,,,\n"
    )
    token = csrf_token(client, "/admin/staff/import")
    answer = client.post("/admin/staff/import", data={"csrf_token": token, "file": (io.BytesIO(bad.encode()), "staff.csv")})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    for row in (2, 3, 4, 5, 6, 7, 9):
        assert f"Row {row}" in page
    assert "Row 8" not in page and "also on row 8" in page
    assert "formula" in page and "headteacher" in page and "staff type: write" in page and "not a real date" in page
    header = client.post("/admin/staff/import", data={"csrf_token": token, "file": (io.BytesIO(b"who,where\nx,y\n"), "s.csv")})
    assert header.status_code == 422 and "must include name, email" in header.get_data(as_text=True)
    huge = "name,email\n" + "x" * (staff_import.MAX_BYTES + 10)
    try:
        staff_import.plan_import(db.session, admin, huge)
    except staff_import.ImportRefused as refused:
        assert "at most 1024 KB" in str(refused.problems[0])
    else:
        raise AssertionError("a file over the size limit was read")
    cell = 'name,email\n"' + "x" * 200_000 + '",a@school.test\n'
    limited = client.post("/admin/staff/import", data={"csrf_token": token, "file": (io.BytesIO(cell.encode()), "s.csv")})
    assert limited.status_code == 422 and "longer than" in limited.get_data(as_text=True)
    assert "staff.imported" not in _actions()


def test_the_import_pages_preview_then_apply(client, frozen_clock):
    admin, _patel, _clarke, leaver = _school()
    sign_in(client, admin)
    token = csrf_token(client, "/admin/staff/import")
    preview = client.post("/admin/staff/import", data={"csrf_token": token, "file": (io.BytesIO(CSV.encode()), "staff.csv")})
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Mr New Volunteer" in page and "31/12/2026" in page and "Mr L Eaver" in page
    digest = page.split('id="digest" name="digest" type="hidden" value="')[1].split('"')[0]
    applied = client.post("/admin/staff/import/apply", data={"csrf_token": token, "text": CSV, "digest": digest})
    assert applied.status_code == 200 and "/set-password/" in applied.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, leaver.id).is_active_account is True  # not opted in
    again = client.post("/admin/staff/import/apply", data={"csrf_token": token, "text": CSV, "digest": digest})
    assert again.status_code == 409
    template = client.get("/admin/staff/import/template.csv")
    assert template.mimetype == "text/csv" and "staff type" in template.get_data(as_text=True)
