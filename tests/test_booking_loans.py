"""From booking to loan (issue 17, item 4): collected in its slot with one tap, released when nobody came,
the next in line told, reminders before the slot and when it is not back; the jobs are idempotent."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from app.clock import utcnow
from app.database import write_intent
from app.extensions import db
from app.jobs import all_jobs
from app.models import AuditEvent, Booking, BookingItem, BookingStatus, Loan, Notification, Role
from app.services import booking_loans, loans
from app.services.audit_sentences import SENTENCES
from app.services.errors import Conflict, Forbidden
from tests.booking_loan_factories import make_booking, make_kit
from tests.equipment_factories import make_asset
from tests.factories import make_user

# Wednesday 25/11/2026 (GMT, so school time is UTC): P3 11:10-12:10, P4 12:10-13:10.
P3 = (datetime(2026, 11, 25, 11, 10, tzinfo=UTC), datetime(2026, 11, 25, 12, 10, tzinfo=UTC))
P4 = (datetime(2026, 11, 25, 12, 10, tzinfo=UTC), datetime(2026, 11, 25, 13, 10, tzinfo=UTC))


@pytest.fixture
def scene(app, frozen_clock):
    office = make_user(Role.OFFICE, name="Ms O Brennan")
    clarke, davies = make_user(name="Mr B Clarke"), make_user(name="Ms C Davies")
    camera = make_asset(office, tag="CAM-001", name="Class camera")
    return frozen_clock, office, clarke, davies, camera


def _at(clock, hour, minute):
    clock.set(datetime(2026, 11, 25, hour, minute, tzinfo=UTC))


def _notices(user, kind):
    return list(db.session.scalars(sa.select(Notification).where(Notification.user_id == user.id, Notification.kind == kind)))


def _events(action):
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def _jobs():
    with write_intent():
        report = booking_loans.run_booking_jobs(db.session, utcnow())
        db.session.commit()
    return report


def test_a_booked_camera_is_lent_to_the_booker_in_its_slot_due_at_its_end(scene):
    clock, office, clarke, _davies, camera = scene
    booking = make_booking(clarke, *P3, asset=camera, periods="P3")
    _at(clock, 10, 50)
    assert booking_loans.collectable_booking(db.session, asset_id=camera.id) is None  # 20 minutes early
    with write_intent(), pytest.raises(Conflict, match="from 10:55"):
        booking_loans.collect(db.session, office, booking.id)
    db.session.rollback()
    _at(clock, 11, 0)
    assert booking_loans.collectable_booking(db.session, asset_id=camera.id).id == booking.id
    with write_intent():
        (loan,) = booking_loans.collect(db.session, office, booking.id)
        db.session.commit()
    assert (loan.borrower_id, loan.due_on, loan.asset_id) == (clarke.id, date(2026, 11, 25), camera.id)
    stored = db.session.get(Booking, booking.id)
    assert stored.status == BookingStatus.COLLECTED.value and stored.loan_id == loan.id and stored.collected_at is not None
    assert stored.items[0].loan_id == loan.id
    (event,) = _events("booking.collected")
    assert event.subject_type == "booking" and "booking.collected" in SENTENCES
    assert len(_notices(clarke, "loan.terms")) == 1
    with write_intent(), pytest.raises(Conflict, match="already been collected"):
        booking_loans.collect(db.session, office, booking.id)
    db.session.rollback()
    # The "due today" reminder would only repeat the slot's end: the booking's own notice speaks for it.
    with write_intent():
        report = loans.send_loan_reminders(db.session, utcnow())
        db.session.commit()
    assert report.borrowers_reminded == 0


def test_only_the_office_collects(scene):
    clock, _office, clarke, _davies, camera = scene
    booking = make_booking(clarke, *P3, asset=camera)
    _at(clock, 11, 15)
    with write_intent(), pytest.raises(Forbidden):
        booking_loans.collect(db.session, clarke, booking.id)
    db.session.rollback()


def test_a_kit_booking_lends_every_member(scene):
    clock, office, clarke, _davies, _camera = scene
    kit, members = make_kit(office, 3)
    booking = make_booking(clarke, *P3, kit=kit)
    _at(clock, 11, 12)
    assert booking_loans.collectable_booking(db.session, kit_id=kit.id).id == booking.id
    # Any member's label hands over the kit's booking; an asset outside the kit does not.
    assert booking_loans.collectable_booking(db.session, asset_id=members[1].id).id == booking.id
    assert booking_loans.collectable_booking(db.session, asset_id=_camera.id) is None
    with write_intent():
        made = booking_loans.collect(db.session, office, booking.id, accepted_in_person=True)
        db.session.commit()
    assert sorted(loan.asset_id for loan in made) == sorted(a.id for a in members)
    stored = db.session.get(Booking, booking.id)
    assert stored.loan_id is None and all(item.loan_id for item in stored.items)
    assert all(loan.terms_accepted_via == "in_person" for loan in made)


def test_an_uncollected_booking_is_released_and_the_next_in_line_told(scene):
    clock, _office, clarke, davies, camera = scene
    first = make_booking(clarke, *P3, asset=camera, periods="P3")
    second = make_booking(davies, *P4, asset=camera, periods="P4")
    _at(clock, 11, 29)
    assert _jobs().released == 0
    _at(clock, 11, 30)  # 20 minutes after the start
    assert _jobs().released == 1
    stored = db.session.get(Booking, first.id)
    assert stored.status == BookingStatus.RELEASED.value and stored.released_at is not None
    assert not db.session.scalar(sa.select(BookingItem.active).where(BookingItem.booking_id == first.id))
    assert len(_notices(clarke, "booking.released")) == 1
    told = _notices(davies, "booking.free_earlier")
    assert len(told) == 1 and "P4" in told[0].body
    assert db.session.get(Booking, second.id).status == BookingStatus.BOOKED.value
    assert _jobs().released == 0  # idempotent
    assert len(_events("booking.released")) == 1 and "booking.released" in SENTENCES


def test_the_booker_is_reminded_once_before_the_slot(scene):
    clock, _office, clarke, _davies, camera = scene
    make_booking(clarke, *P3, asset=camera)
    _at(clock, 10, 30)
    assert _jobs().reminded == 0  # 40 minutes before
    _at(clock, 10, 41)
    assert _jobs().reminded == 1
    _at(clock, 10, 50)
    assert _jobs().reminded == 0
    (notice,) = _notices(clarke, "booking.starts_soon")
    assert "11:10" in notice.title
    assert "booking.reminder_sent" in SENTENCES


def test_not_back_at_the_end_of_the_slot_the_booker_is_told_once_and_a_return_completes_it(scene):
    clock, office, clarke, _davies, camera = scene
    booking = make_booking(clarke, *P3, asset=camera)
    _at(clock, 11, 5)
    with write_intent():
        booking_loans.collect(db.session, office, booking.id)
        db.session.commit()
    _at(clock, 12, 9)
    assert _jobs().overdue_told == 0
    _at(clock, 12, 15)
    assert _jobs().overdue_told == 1
    assert _jobs().overdue_told == 0
    (notice,) = _notices(clarke, "booking.overdue")
    assert "12:10" in notice.title and "CAM-001" in notice.body
    with write_intent():
        loans.check_in(db.session, office, camera.id)
        db.session.commit()
    assert _jobs().completed == 1
    stored = db.session.get(Booking, booking.id)
    assert stored.status == BookingStatus.COMPLETED.value and not stored.items[0].active
    assert _jobs().completed == 0
    assert db.session.get(Loan, stored.loan_id).returned_at is not None


def test_the_job_is_registered_in_the_one_list_and_runs_in_the_schedulers_tick(scene):
    from app.scheduler import run_timed_jobs

    assert "bookings" in {job.name for job in all_jobs()}
    _clock, _office, clarke, _davies, camera = scene
    make_booking(clarke, *P3, asset=camera)
    db.session.rollback()
    tick = run_timed_jobs(db.session, datetime(2026, 11, 25, 11, 31, tzinfo=UTC), names=["bookings"])
    assert tick["bookings"].released == 1
    again = run_timed_jobs(db.session, datetime(2026, 11, 25, 11, 31, 30, tzinfo=UTC), names=["bookings"])
    assert again["bookings"] == booking_loans.BookingJobReport()
