"""Loan rules pinned exactly: who may lend and to whom, the due-date and length limits, what a loan and
its audit record keep, the borrower's terms, check-in, and who may see a loan.

Written for mutation testing (issue 19): each assertion is one a changed comparison, message or audit
field in the people- and record-protecting functions of app/services/loans.py would break.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, AuditLink, Loan, Notification, Role
from app.services import assets, loans
from app.services.accounts import deactivate_user
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.booking_factories import bookable_asset, make_booking
from tests.equipment_factories import lend, make_asset
from tests.factories import make_user

TODAY = date(2026, 11, 25)  # the frozen clock's school date (09:00 UTC, GMT)


@pytest.fixture(autouse=True)
def _school_day(frozen_clock):
    return frozen_clock


@pytest.fixture
def office(app):
    return make_user(Role.OFFICE, name="Ms Office")


@pytest.fixture
def teacher(app):
    return make_user(name="Mr Teacher")


def _check_out(office, asset, **fields):
    fields.setdefault("due_on", TODAY + timedelta(days=7))
    with write_intent():
        loan = loans.check_out(db.session, office, asset.id, **fields)
        db.session.commit()
    return loan


def _refused(call, *args, **kwargs):
    with write_intent(), pytest.raises((Conflict, ValidationFailed, NotFound, Forbidden)) as caught:
        call(db.session, *args, **kwargs)
    db.session.rollback()
    return caught.value


def _last(action: str) -> AuditEvent:
    return db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq.desc()).limit(1))


def _links(event: AuditEvent) -> set[tuple[str, str]]:
    return {(link.kind, link.ref) for link in db.session.scalars(sa.select(AuditLink).where(AuditLink.seq == event.seq))}


# Check-out ----------------------------------------------------------------------------------------------


def test_a_check_out_keeps_who_what_when_and_the_trimmed_notes(office, teacher, frozen_clock):
    asset = make_asset(office, tag="MUT-1", name="Camera")
    loan = _check_out(office, asset, borrower_id=teacher.id, purpose="  Trip photos  ", condition="  Good  ")
    db.session.refresh(asset)
    assert asset.status == "on_loan"
    assert (loan.asset_id, loan.borrower_id, loan.issued_by_id, loan.out_at, loan.due_on) == (
        asset.id,
        teacher.id,
        office.id,
        frozen_clock.now,
        TODAY + timedelta(days=7),
    )
    assert (loan.purpose, loan.condition_out, loan.returned_at) == ("Trip photos", "Good", None)
    event = _last("loan.checked_out")
    assert (event.actor_id, event.subject_type, event.subject_id) == (office.id, "asset", str(asset.id))
    assert json.loads(event.details) == {"loan_id": loan.id, "tag": "MUT-1", "borrower_id": teacher.id, "due_on": "2026-12-02"}
    assert ("user", str(teacher.id)) in _links(event)
    assert _last("loan.terms_accepted") is None


def test_the_borrower_is_asked_to_accept_the_terms_on_their_phone(office, teacher, monkeypatch):
    sent = []
    real_notify = loans.notify

    def notify(session, people, **notice):
        sent.append(([person.id for person in people], notice))
        return real_notify(session, people, **notice)

    monkeypatch.setattr(loans, "notify", notify)
    asset = make_asset(office, tag="MUT-2", name="Camera")
    loan = _check_out(office, asset, borrower_id=teacher.id)
    assert sent == [
        (
            [teacher.id],
            {
                "kind": "loan.terms",
                "title": "Please accept the terms for Camera (MUT-2)",
                "body": "It is lent to you until 02/12/2026. Read the school's terms and tap I accept.",
                "url": f"/loans/{loan.id}/terms",
                "extra": {"kind": "loan.terms", "loan_id": loan.id},
            },
        )
    ]
    notice = db.session.scalar(sa.select(Notification).where(Notification.user_id == teacher.id))
    assert notice is not None and notice.kind == "loan.terms"


def test_terms_accepted_at_the_office_are_recorded_and_nobody_is_asked(office, teacher, frozen_clock):
    asset = make_asset(office, tag="MUT-3")
    loan = _check_out(office, asset, borrower_id=teacher.id, accepted_in_person=True)
    assert (loan.terms_accepted_at, loan.terms_accepted_via, loan.terms_recorded_by_id) == (
        frozen_clock.now,
        "in_person",
        office.id,
    )
    assert loans.accepted_via(loan) == "in_person"
    event = _last("loan.terms_accepted")
    assert (event.actor_id, event.subject_type, event.subject_id) == (office.id, "asset", str(asset.id))
    assert json.loads(event.details) == {"loan_id": loan.id, "tag": "MUT-3", "borrower_id": teacher.id, "via": "in_person"}
    assert ("user", str(teacher.id)) in _links(event)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0


def test_only_the_office_lends_and_only_to_an_active_member_of_staff(office, teacher):
    asset = make_asset(office)
    assert isinstance(_refused(loans.check_out, teacher, asset.id, borrower_id=teacher.id, due_on=TODAY), Forbidden)
    leaver = make_user(name="Mr Leaver")
    with write_intent():
        deactivate_user(db.session, None, leaver)
        db.session.commit()
    for borrower_id in (None, leaver.id, 999_999):
        refusal = _refused(loans.check_out, office, asset.id, borrower_id=borrower_id, due_on=TODAY)
        assert isinstance(refusal, ValidationFailed) and refusal.message == "Some details need correcting."
        assert refusal.field_errors == {"borrower_id": ["Choose who is borrowing it."]}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Loan)) == 0


def test_the_due_date_runs_from_today_to_a_year_ahead(office, teacher, frozen_clock):
    asset = make_asset(office)
    for due_on, error in [
        (None, "Enter the date it is due back, like 02/12/2026."),
        (TODAY - timedelta(days=1), "The due date must be today (25/11/2026) or later."),
        (TODAY + timedelta(days=367), "A loan can last at most a year; choose an earlier due date."),
    ]:
        refusal = _refused(loans.check_out, office, asset.id, borrower_id=teacher.id, due_on=due_on)
        assert refusal.field_errors == {"due_on": [error]}
    assert _check_out(office, asset, borrower_id=teacher.id, due_on=TODAY + timedelta(days=366)).due_on == date(2027, 11, 26)
    other = make_asset(office)
    assert _check_out(office, other, borrower_id=teacher.id, due_on=TODAY).due_on == TODAY


def test_purpose_and_condition_have_limits_after_trimming(office, teacher):
    asset = make_asset(office)
    refusal = _refused(loans.check_out, office, asset.id, borrower_id=None, due_on=TODAY, purpose="p" * 201, condition="c" * 501)
    assert refusal.field_errors == {
        "borrower_id": ["Choose who is borrowing it."],
        "purpose": ["Use at most 200 characters."],
        "condition": ["Use at most 500 characters."],
    }
    loan = _check_out(office, asset, borrower_id=teacher.id, purpose=f" {'p' * 200} ", condition=f" {'c' * 500} ")
    assert (len(loan.purpose), len(loan.condition_out)) == (200, 500)


def test_an_asset_on_loan_or_not_lendable_is_refused_by_name(office, teacher, frozen_clock):
    lent = make_asset(office, tag="MUT-4")
    lend(office, lent, teacher)
    refusal = _refused(loans.check_out, office, lent.id, borrower_id=office.id, due_on=TODAY)
    assert isinstance(refusal, Conflict)
    assert refusal.message == "MUT-4 is already on loan to Mr Teacher (since 25/11/2026). Check it in before lending it again."
    lost = make_asset(office, tag="MUT-5", status="lost")
    repair = make_asset(office, tag="MUT-6", status="in_repair")
    retired = make_asset(office, tag="MUT-7")
    with write_intent():
        assets.retire_asset(db.session, office, retired)
        db.session.commit()
    for asset, reason in [(lost, "is recorded as lost"), (repair, "is in repair"), (retired, "is retired")]:
        refusal = _refused(loans.check_out, office, asset.id, borrower_id=teacher.id, due_on=TODAY)
        assert refusal.message == f"{asset.tag} {reason}, so it cannot be lent."


def test_a_check_out_that_loses_the_race_says_so(office, teacher, monkeypatch):
    asset = make_asset(office, tag="MUT-8")
    lend(office, asset, teacher)
    monkeypatch.setattr(loans, "open_loan_for", lambda session, asset_id: None)
    with write_intent():
        db.session.get(type(asset), asset.id).status = "available"
        db.session.commit()
    refusal = _refused(loans.check_out, office, asset.id, borrower_id=office.id, due_on=TODAY)
    assert refusal.message == "MUT-8 has just been lent by someone else. Reload the page to see who has it."


# The borrower's terms -----------------------------------------------------------------------------------


def test_only_the_borrower_accepts_once_while_they_have_it(office, teacher, frozen_clock):
    asset = make_asset(office, tag="MUT-9")
    loan = lend(office, asset, teacher)
    for someone in (office, make_user(name="Miss Other")):
        refusal = _refused(loans.accept_terms, someone, loan.id)
        assert isinstance(refusal, NotFound) and refusal.message == "There is no such loan."
    assert _refused(loans.accept_terms, teacher, 999_999).message == "There is no such loan."
    frozen_clock.advance(minutes=5)
    with write_intent():
        accepted = loans.accept_terms(db.session, teacher, loan.id)
        db.session.commit()
    assert (accepted.terms_accepted_at, accepted.terms_accepted_via, accepted.terms_recorded_by_id) == (
        frozen_clock.now,
        "own_phone",
        teacher.id,
    )
    assert loans.accepted_via(accepted) == "own_phone"
    event = _last("loan.terms_accepted")
    assert (event.actor_id, event.subject_type, event.subject_id) == (teacher.id, "asset", str(asset.id))
    assert json.loads(event.details) == {"loan_id": loan.id, "tag": "MUT-9", "borrower_id": teacher.id, "via": "own_phone"}
    again = _refused(loans.accept_terms, teacher, loan.id)
    assert isinstance(again, Conflict) and again.message == "You accepted the terms for MUT-9 on 25/11/2026."


def test_terms_cannot_be_accepted_after_the_return(office, teacher):
    asset = make_asset(office, tag="MUT-10")
    loan = lend(office, asset, teacher)
    with write_intent():
        loans.check_in(db.session, office, asset.id)
        db.session.commit()
    refusal = _refused(loans.accept_terms, teacher, loan.id)
    assert isinstance(refusal, Conflict)
    assert refusal.message == "MUT-10 has been returned, so there is nothing to accept."
    assert loans.accepted_via(loan) is None


# Check-in -----------------------------------------------------------------------------------------------


def _check_in(office, asset, **fields):
    with write_intent():
        loan = loans.check_in(db.session, office, asset.id, **fields)
        db.session.commit()
    return loan


def test_a_check_in_on_the_due_day_is_not_late_and_keeps_the_trimmed_condition(office, teacher, frozen_clock):
    asset = make_asset(office, tag="MUT-11")
    lend(office, asset, teacher, due_on=TODAY)
    frozen_clock.advance(hours=8)
    loan = _check_in(office, asset, condition="  Fine  ", damaged=0)
    db.session.refresh(asset)
    assert asset.status == "available"
    assert (loan.returned_at, loan.received_by_id, loan.condition_in, loan.damaged) == (
        frozen_clock.now,
        office.id,
        "Fine",
        False,
    )
    event = _last("loan.checked_in")
    assert (event.actor_id, event.subject_type, event.subject_id) == (office.id, "asset", str(asset.id))
    assert json.loads(event.details) == {"loan_id": loan.id, "tag": "MUT-11", "damaged": False, "late": False}
    assert ("user", str(teacher.id)) in _links(event)


def test_a_late_damaged_return_is_audited_as_such_and_goes_to_repair(office, teacher, frozen_clock):
    asset = make_asset(office, tag="MUT-12")
    lend(office, asset, teacher, due_on=TODAY)
    frozen_clock.advance(days=1)
    loan = _check_in(office, asset, damaged="yes")
    db.session.refresh(asset)
    assert asset.status == "in_repair" and loan.damaged is True
    assert json.loads(_last("loan.checked_in").details) == {"loan_id": loan.id, "tag": "MUT-12", "damaged": True, "late": True}


def test_check_in_is_for_the_office_with_a_limited_condition(office, teacher):
    asset = make_asset(office, tag="MUT-13")
    assert isinstance(_refused(loans.check_in, teacher, asset.id), Forbidden)
    refusal = _refused(loans.check_in, office, asset.id)
    assert refusal.message == "MUT-13 is not on loan, so there is nothing to check in."
    lend(office, asset, teacher)
    refusal = _refused(loans.check_in, office, asset.id, condition="c" * 501)
    assert isinstance(refusal, ValidationFailed) and refusal.message == "Some details need correcting."
    assert refusal.field_errors == {"condition": ["Use at most 500 characters."]}
    assert len(_check_in(office, asset, condition=f" {'c' * 500} ").condition_in) == 500


# Who sees a loan ----------------------------------------------------------------------------------------


def test_the_office_sees_every_loan_and_staff_only_their_own(office, teacher):
    loan = lend(office, make_asset(office), teacher)
    assert loans.visible_loan(db.session, office, loan.id) is loan
    assert loans.visible_loan(db.session, teacher, loan.id) is loan
    assert loans.borrowers_loan(db.session, teacher, loan.id) is loan
    for viewer, loan_id in [(make_user(name="Miss Other"), loan.id), (office, 999_999), (teacher, 999_999)]:
        with pytest.raises(NotFound, match=r"^There is no such loan\.$"):
            loans.visible_loan(db.session, viewer, loan_id)
    with pytest.raises(NotFound, match=r"^There is no such loan\.$"):
        loans.borrowers_loan(db.session, office, loan.id)


def test_a_loan_without_notes_keeps_none(office, teacher):
    asset = make_asset(office)
    with write_intent():
        loan = loans.check_out(db.session, office, asset.id, borrower_id=teacher.id, due_on=TODAY)
        db.session.commit()
    assert (loan.purpose, loan.condition_out) == ("", "")
    assert _check_in(office, asset).condition_in == ""


def test_check_out_refuses_someone_elses_booking_but_lends_to_the_booker(office, teacher):
    # The booking refusal check_out gained (issue 17): it is asked with this borrower and this due date.
    walk_in = make_user(name="Miss Walk-in")
    thursday = TODAY + timedelta(days=1)
    camera = bookable_asset(office, name="Class camera", tag="MUT-CAM")
    make_booking(teacher, day=thursday, periods=("P3",), asset_id=camera.id)
    caught = _refused(loans.check_out, office, camera.id, borrower_id=walk_in.id, due_on=thursday)
    assert isinstance(caught, Conflict) and str(caught).startswith("MUT-CAM is booked by Mr Teacher for ")
    assert db.session.get(type(camera), camera.id).status == "available"
    loan = _check_out(office, camera, borrower_id=teacher.id, due_on=thursday)
    assert loan.borrower_id == teacher.id
