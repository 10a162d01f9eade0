"""Kit check-out and check-in (issue 17, item 2): every member lent in one go, all or nothing; the return
names what did not come back."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.clock import local_today
from app.database import write_intent
from app.extensions import db
from app.models import AssetStatus, AuditEvent, Loan, Notification, Role, SchoolAsset
from app.services import kit_loans
from app.services.audit_sentences import SENTENCES
from app.services.errors import Conflict, Forbidden, ValidationFailed
from tests.booking_loan_factories import make_kit
from tests.equipment_factories import lend
from tests.factories import make_user


@pytest.fixture
def people(app):
    return make_user(Role.OFFICE, name="Ms O Brennan"), make_user(name="Mr B Clarke"), make_user(name="Ms C Davies")


def _lend_kit(office, kit, borrower, **extra):
    with write_intent():
        made = kit_loans.check_out_kit(
            db.session, office, kit.id, borrower_id=borrower.id, due_on=local_today() + timedelta(days=2), **extra
        )
        db.session.commit()
    return made


def _events(action):
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def test_a_kit_is_lent_whole_one_loan_per_member_with_one_audit_event_and_one_notice(people):
    office, clarke, _ = people
    kit, members = make_kit(office, 30)
    made = _lend_kit(office, kit, clarke, purpose="Year 4 science")
    assert len(made) == 30
    loans = list(db.session.scalars(sa.select(Loan).where(Loan.returned_at.is_(None))))
    assert {loan.asset_id for loan in loans} == {a.id for a in members}
    assert {(loan.borrower_id, loan.due_on, loan.purpose) for loan in loans} == {
        (clarke.id, local_today() + timedelta(days=2), "Year 4 science")
    }
    assert all(db.session.get(SchoolAsset, a.id).status == AssetStatus.ON_LOAN.value for a in members)
    (event,) = _events("kit.checked_out")
    assert event.subject_type == "kit" and event.subject_id == str(kit.id)
    assert "kit.checked_out" in SENTENCES
    notices = list(db.session.scalars(sa.select(Notification).where(Notification.user_id == clarke.id)))
    assert len(notices) == 1 and "30 items" in notices[0].title
    assert all(loan.terms_text and loan.terms_accepted_at is None for loan in loans)


def test_terms_accepted_in_person_are_recorded_on_every_loan(people):
    office, clarke, _ = people
    kit, _members = make_kit(office, 3)
    made = _lend_kit(office, kit, clarke, accepted_in_person=True)
    assert all(loan.terms_accepted_via == "in_person" and loan.terms_recorded_by_id == office.id for loan in made)
    assert not list(db.session.scalars(sa.select(Notification).where(Notification.user_id == clarke.id)))


def test_one_member_out_lends_nothing_and_says_which(people):
    office, clarke, davies = people
    kit, members = make_kit(office, 5)
    lend(office, members[2], davies)
    with write_intent(), pytest.raises(Conflict, match="IPAD-03 is on loan to Ms C Davies"):
        kit_loans.check_out_kit(db.session, office, kit.id, borrower_id=clarke.id, due_on=local_today())
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Loan)) == 1
    assert not _events("kit.checked_out")


def test_kit_check_out_checks_the_details_and_the_role(people):
    office, clarke, _ = people
    kit, _members = make_kit(office, 2)
    with write_intent(), pytest.raises(ValidationFailed) as refused:
        kit_loans.check_out_kit(db.session, office, kit.id, borrower_id=None, due_on=local_today() - timedelta(days=1))
    assert set(refused.value.field_errors) == {"borrower_id", "due_on"}
    db.session.rollback()
    with write_intent(), pytest.raises(Forbidden):
        kit_loans.check_out_kit(db.session, clarke, kit.id, borrower_id=clarke.id, due_on=local_today())
    db.session.rollback()


def test_check_in_reports_the_members_that_did_not_come_back(people):
    office, clarke, _ = people
    kit, members = make_kit(office, 30)
    _lend_kit(office, kit, clarke)
    missing = {members[6].id, members[18].id}
    back = [a.id for a in members if a.id not in missing]
    with write_intent():
        result = kit_loans.check_in_kit(
            db.session, office, kit.id, returned_ids=back, conditions={members[0].id: "Cracked case"}, damaged_ids=[members[0].id]
        )
        db.session.commit()
    assert result.summary == "2 of 30 not returned: IPAD-07, IPAD-19"
    still_out = list(db.session.scalars(sa.select(Loan).where(Loan.returned_at.is_(None))))
    assert {loan.asset_id for loan in still_out} == missing
    assert all(loan.due_on == local_today() for loan in still_out)  # chased from tomorrow
    first = db.session.get(SchoolAsset, members[0].id)
    assert first.status == AssetStatus.IN_REPAIR.value
    assert db.session.get(SchoolAsset, members[1].id).status == AssetStatus.AVAILABLE.value
    (event,) = _events("kit.checked_in")
    assert '"missing_tags":["IPAD-07","IPAD-19"]' in event.details
    # The rest come back later: the kit check-in takes just those.
    with write_intent():
        later = kit_loans.check_in_kit(db.session, office, kit.id, returned_ids=list(missing))
        db.session.commit()
    assert later.summary == "All 2 back."
    with write_intent(), pytest.raises(Conflict, match="nothing to check in"):
        kit_loans.check_in_kit(db.session, office, kit.id, returned_ids=[])
    db.session.rollback()


def test_one_tap_accepts_the_terms_for_everything_lent_together(people):
    office, clarke, davies = people
    kit, members = make_kit(office, 4)
    made = _lend_kit(office, kit, clarke)
    with write_intent(), pytest.raises(Exception, match="no such loan"):
        kit_loans.accept_terms_together(db.session, davies, made[0].id)  # someone else's: no such loan
    db.session.rollback()
    with write_intent():
        accepted = kit_loans.accept_terms_together(db.session, clarke, made[0].id)
        db.session.commit()
    assert len(accepted) == 4
    assert all(db.session.get(Loan, loan.id).terms_accepted_via == "own_phone" for loan in made)
    assert len(_events("loan.terms_accepted_together")) == 1
    assert "loan.terms_accepted_together" in SENTENCES
    del members
