"""The borrower's terms for school equipment (issue 15 item 3): kept word for word with each loan,
accepted in person at the office or on the borrower's own phone, shown to the office and the borrower."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.clock import format_date, local_today
from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, Loan, Notification, Role
from app.services import loans, school_settings
from app.services.errors import Conflict, NotFound
from app.services.settings import set_setting
from tests.equipment_factories import api_headers, lend, make_asset, page_csrf_token
from tests.factories import make_user, sign_in

DEFAULT_TERMS = (
    "School equipment is for school use only, not for unauthorised personal use. "
    "Look after it, keep it secure and return it by the date due."
)


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


@pytest.fixture
def office(app):
    return make_user(Role.OFFICE, name="Ms Office")


@pytest.fixture
def teacher(app):
    return make_user(name="Mr Teacher")


# Service ------------------------------------------------------------------------------------------------


def test_a_loan_keeps_the_default_terms_and_asks_the_borrower_on_their_phone(app, office, teacher):
    asset = make_asset(office, tag="TRM-1", name="Camera")
    loan = lend(office, asset, teacher)
    assert loan.terms_text == DEFAULT_TERMS
    assert loan.terms_accepted_at is None and loan.terms_accepted_via is None and not loan.terms_accepted
    notice = db.session.scalar(sa.select(Notification).where(Notification.user_id == teacher.id))
    assert notice is not None and notice.url == f"/loans/{loan.id}/terms"
    assert "TRM-1" in notice.title and format_date(loan.due_on) in notice.body
    assert _events("loan.terms_accepted") == []


def test_in_person_acceptance_is_recorded_by_the_office_and_audited(app, office, teacher):
    asset = make_asset(office, tag="TRM-2")
    loan = lend(office, asset, teacher, accepted_in_person=True)
    assert loan.terms_accepted_at is not None
    assert loan.terms_accepted_via == "in_person" and loan.terms_recorded_by_id == office.id
    event = _events("loan.terms_accepted")[-1]
    assert event.actor_id == office.id and event.subject_id == str(asset.id)
    assert json.loads(event.details) == {"loan_id": loan.id, "tag": "TRM-2", "borrower_id": teacher.id, "via": "in_person"}
    # Nobody is asked again on their phone.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification).where(Notification.kind == "loan.terms")) == 0


def test_the_loan_keeps_the_wording_it_was_lent_under(app, office, teacher):
    admin = make_user(Role.ADMIN, name="Mrs Admin")
    first = lend(office, make_asset(office, tag="TRM-3"), teacher)
    with write_intent():
        set_setting(db.session, admin, school_settings.LOAN_TERMS.key, "New wording: bring it back charged.")
        db.session.commit()
    second = lend(office, make_asset(office, tag="TRM-4"), teacher)
    db.session.refresh(first)
    assert first.terms_text == DEFAULT_TERMS
    assert second.terms_text == "New wording: bring it back charged."


def test_the_borrower_accepts_once_on_their_phone(app, office, teacher):
    loan = lend(office, make_asset(office, tag="TRM-5"), teacher)
    with write_intent():
        accepted = loans.accept_terms(db.session, teacher, loan.id)
        db.session.commit()
    assert accepted.terms_accepted_via == "own_phone" and accepted.terms_recorded_by_id == teacher.id
    assert json.loads(_events("loan.terms_accepted")[-1].details)["via"] == "own_phone"
    with write_intent(), pytest.raises(Conflict, match="You accepted the terms for TRM-5"):
        loans.accept_terms(db.session, teacher, loan.id)
    db.session.rollback()
    assert len(_events("loan.terms_accepted")) == 1


def test_only_the_borrower_can_accept_and_not_after_the_return(app, office, teacher):
    asset = make_asset(office, tag="TRM-6")
    loan = lend(office, asset, teacher)
    for someone in (office, make_user(name="Miss Other"), make_user(Role.ADMIN, name="Mr Admin")):
        with write_intent(), pytest.raises(NotFound):
            loans.accept_terms(db.session, someone, loan.id)
        db.session.rollback()
    with write_intent():
        loans.check_in(db.session, office, asset.id, condition="Scratched screen")
        db.session.commit()
    with write_intent(), pytest.raises(Conflict, match="has been returned"):
        loans.accept_terms(db.session, teacher, loan.id)
    db.session.rollback()
    assert _events("loan.terms_accepted") == []


def test_the_history_shows_the_terms_and_both_conditions(app, office, teacher):
    from app.services import assets

    asset = make_asset(office, tag="TRM-7")
    lend(office, asset, teacher, condition="Small scratch", accepted_in_person=True)
    with write_intent():
        loans.check_in(db.session, office, asset.id, condition="Lens cap missing")
        db.session.commit()
    texts = " | ".join(entry.text for entry in assets.asset_history(db.session, asset))
    assert "condition going out: Small scratch" in texts and "terms accepted in person on" in texts
    assert "received by Ms Office: Lens cap missing" in texts


def test_the_terms_setting_is_on_the_settings_page_and_checked(app):
    admin = make_user(Role.ADMIN, name="Mrs Admin")
    groups = {group.title: [f.key for f in group.fields] for group in school_settings.setting_groups(db.session)}
    assert "loans.terms_text" in groups["School"]
    field = next(f for f in school_settings.setting_fields(db.session) if f.key == "loans.terms_text")
    assert field.kind == "long" and field.help and field.value == DEFAULT_TERMS
    with write_intent(), pytest.raises(Exception, match="Some settings need correcting"):
        school_settings.save_settings(db.session, admin, {"loans.terms_text": [""]})
    db.session.rollback()
    with write_intent(), pytest.raises(Exception, match="Some settings need correcting"):
        school_settings.save_settings(db.session, admin, {"loans.terms_text": ["x" * 1001]})
    db.session.rollback()
    long_terms = "Use it for school only. " * 20
    with write_intent():
        assert school_settings.save_settings(db.session, admin, {"loans.terms_text": [long_terms]}) == 1
        db.session.commit()
    assert school_settings.loan_terms(db.session) == long_terms.strip()


# Routes -------------------------------------------------------------------------------------------------


def test_office_ticks_in_person_acceptance_at_check_out(app, client, office, teacher):
    asset = make_asset(office, tag="TRM-10", name="Tablet")
    sign_in(client, office)
    token = page_csrf_token(client)
    page = client.get(f"/equipment/{asset.id}/check-out").get_data(as_text=True)
    assert DEFAULT_TERMS in page and "The borrower has read and accepted the terms" in page
    due = (local_today() + timedelta(days=3)).isoformat()
    posted = client.post(
        f"/equipment/{asset.id}/check-out",
        data={"csrf_token": token, "borrower_id": str(teacher.id), "due_on": due, "terms_accepted": "y"},
    )
    assert posted.status_code == 302
    loan = db.session.scalar(sa.select(Loan).where(Loan.asset_id == asset.id))
    assert loan.terms_accepted_via == "in_person" and loan.terms_recorded_by_id == office.id
    shown = client.get(f"/equipment/{asset.id}").get_data(as_text=True)
    assert "Terms accepted in person at the office" in shown and "recorded by Ms Office" in shown
    listed = client.get("/equipment/loans").get_data(as_text=True)
    assert "Accepted " + format_date(loan.terms_accepted_at) in listed


def test_without_the_tick_the_borrower_accepts_on_their_phone(app, client, office, teacher):
    asset = make_asset(office, tag="TRM-11", name="Tablet")
    sign_in(client, office)
    token = page_csrf_token(client)
    due = local_today() + timedelta(days=3)
    posted = client.post(
        f"/equipment/{asset.id}/check-out",
        data={"csrf_token": token, "borrower_id": str(teacher.id), "due_on": due.isoformat()},
    )
    assert posted.status_code == 302
    shown = client.get(f"/equipment/{asset.id}").get_data(as_text=True)
    assert "Terms not yet accepted" in shown
    assert "Not yet accepted" in client.get("/equipment/loans").get_data(as_text=True)
    loan = db.session.scalar(sa.select(Loan).where(Loan.asset_id == asset.id))
    # The office cannot accept for the borrower through the borrower's page.
    assert client.get(f"/loans/{loan.id}/terms").status_code == 404
    assert client.post(f"/loans/{loan.id}/terms", data={"csrf_token": token}).status_code == 404

    client.post("/sign-out", data={"csrf_token": token})
    sign_in(client, teacher)
    mine = client.get("/my-loans").get_data(as_text=True)
    assert "Terms not yet accepted" in mine and f"/loans/{loan.id}/terms" in mine
    page = client.get(f"/loans/{loan.id}/terms")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert DEFAULT_TERMS in text and "TRM-11" in text and format_date(due) in text and "I accept" in text
    assert 'name="form_key"' in text and 'name="csrf_token"' in text
    token = page_csrf_token(client, f"/loans/{loan.id}/terms")
    accepted = client.post(f"/loans/{loan.id}/terms", data={"csrf_token": token})
    assert accepted.status_code == 302 and accepted.headers["Location"].endswith("/my-loans")
    db.session.refresh(loan)
    assert loan.terms_accepted_via == "own_phone" and loan.terms_recorded_by_id == teacher.id
    assert "Terms accepted" in client.get("/my-loans").get_data(as_text=True)
    again_page = client.get(f"/loans/{loan.id}/terms").get_data(as_text=True)
    assert "You accepted these terms" in again_page and "I accept" not in again_page
    again = client.post(f"/loans/{loan.id}/terms", data={"csrf_token": token})
    assert again.status_code == 409 and "You accepted the terms for TRM-11" in again.get_data(as_text=True)
    assert len(_events("loan.terms_accepted")) == 1


def test_someone_else_finds_no_such_loan(app, client, office, teacher):
    loan = lend(office, make_asset(office, tag="TRM-12"), teacher)
    other = make_user(name="Miss Other")
    sign_in(client, other)
    token = page_csrf_token(client)
    assert client.get(f"/loans/{loan.id}/terms").status_code == 404
    assert client.post(f"/loans/{loan.id}/terms", data={"csrf_token": token}).status_code == 404
    assert client.get("/loans/999999/terms").status_code == 404
    db.session.refresh(loan)
    assert loan.terms_accepted_at is None


def test_the_api_check_out_records_in_person_acceptance_and_shows_the_fields(app, client, office, teacher):
    asset = make_asset(office, tag="TRM-13")
    other = make_asset(office, tag="TRM-14")
    sign_in(client, office)
    headers = api_headers(client)
    due = (local_today() + timedelta(days=2)).isoformat()
    out = client.post(
        f"/api/v1/assets/{asset.id}/check-out",
        headers=headers,
        json={"borrower_id": teacher.id, "due_on": due, "terms_accepted_in_person": True},
    )
    body = out.get_json()
    assert out.status_code == 201
    assert body["terms_text"] == DEFAULT_TERMS and body["terms_accepted_via"] == "in_person"
    assert body["terms_accepted_at"] and body["terms_recorded_by"]["name"] == "Ms Office"
    waiting = client.post(
        f"/api/v1/assets/{other.id}/check-out", headers=headers, json={"borrower_id": teacher.id, "due_on": due}
    )
    assert waiting.status_code == 201
    assert waiting.get_json()["terms_accepted_at"] is None and waiting.get_json()["terms_accepted_via"] is None
    assert waiting.get_json()["terms_recorded_by"] is None
