"""Issue 17: booking equipment by lesson period or time, kits all or nothing, who may book, clashes named
with the next free slot, cancelling rights, audit events, periods setting, "My data" and retention."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, AuditLink, Booking, BookingItem, Role
from app.services import bookings, school_days
from app.services.audit_sentences import describe_page
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.services.periods import parse_periods
from app.services.personal_data import export_person
from app.services.retention import run_retention
from app.services.school_settings import save_settings
from app.services.settings import get_setting
from tests.booking_factories import bookable_asset, make_booking, make_kit
from tests.equipment_factories import lend, make_asset
from tests.factories import make_user

THURSDAY = date(2026, 11, 26)  # the frozen clock is Wednesday 25/11/2026 09:00 UTC


def _book(actor, **kwargs):
    with write_intent():
        try:
            booking = bookings.book(db.session, actor, **kwargs)
        except Exception:
            db.session.rollback()
            raise
        db.session.commit()
    return booking


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


# Periods ----------------------------------------------------------------------------------------------


def test_periods_are_read_from_the_setting_text():
    periods = parse_periods("P1 08:50-09:50, P2 9:50-10:50 ; Lunch 12:00 - 13:00")
    assert [(p.label, p.starts, p.ends) for p in periods] == [
        ("P1", time(8, 50), time(9, 50)),
        ("P2", time(9, 50), time(10, 50)),
        ("Lunch", time(12, 0), time(13, 0)),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "at least one lesson period"),
        ("P1 08:50", "is not a period with its times"),
        ("P1 09:50-08:50", "must end after it starts"),
        ("P1 08:50-09:50, P2 09:00-10:00", "starts before P1 ends"),
        ("P1 08:50-09:50, p1 10:00-11:00", "named twice"),
        ("P1 25:00-26:00", "is not a period with its times"),
    ],
)
def test_a_bad_periods_setting_says_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says):
        parse_periods(text)


def test_the_settings_page_checks_and_stores_the_periods(app, frozen_clock):
    admin = make_user(Role.ADMIN)
    with write_intent():
        with pytest.raises(ValidationFailed) as refused:
            save_settings(db.session, admin, {"bookings.periods": ["P1 nine till ten"]})
        assert "bookings.periods" in refused.value.field_errors
        db.session.rollback()
    with write_intent():
        save_settings(db.session, admin, {"bookings.periods": ["AM 9:00-12:00,PM 13:00-15:30"]})
        db.session.commit()
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office)
    booking = _book(make_user(), asset_id=camera.id, day=THURSDAY, periods=["PM"])
    assert booking.periods == "PM"
    assert booking.starts_at == datetime(2026, 11, 26, 13, 0, tzinfo=UTC)  # London is on UTC in November


# Booking ----------------------------------------------------------------------------------------------


def test_staff_book_an_asset_by_periods_and_the_event_reads_as_a_sentence(app, frozen_clock):
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office, name="Class camera")
    teacher = make_user(name="Mr B Clarke")
    booking = _book(teacher, asset_id=camera.id, day=THURSDAY, periods=["P4", "P3"], purpose="Science photos")
    assert (booking.starts_at, booking.ends_at) == (
        datetime(2026, 11, 26, 11, 10, tzinfo=UTC),
        datetime(2026, 11, 26, 13, 10, tzinfo=UTC),
    )
    assert booking.periods == "P3-P4"
    assert booking.booked_for_id == booking.booked_by_id == teacher.id
    assert [(i.asset_id, i.active) for i in booking.items] == [(camera.id, True)]
    (event,) = _events("booking.created")
    links = set(db.session.execute(sa.select(AuditLink.kind, AuditLink.ref).where(AuditLink.seq == event.seq)))
    assert {("asset", str(camera.id)), ("user", str(teacher.id)), ("booking", str(booking.id))} <= links
    (view,) = describe_page(db.session, [event])
    assert view.sentence == f"Mr B Clarke booked Class camera ({camera.tag}) for Thursday 26/11/2026, P3-P4."


def test_a_time_range_and_its_refusals(app, frozen_clock):
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office)
    teacher = make_user()
    booking = _book(teacher, asset_id=camera.id, day=THURSDAY, starts=time(13, 0), ends=time(14, 30))
    assert booking.periods is None and booking.ends_at - booking.starts_at == timedelta(minutes=90)
    refusals = [
        (dict(day=THURSDAY, starts=time(14, 0), ends=time(13, 0)), "ends"),
        (dict(day=THURSDAY, periods=["P1", "P3"]), "periods"),
        (dict(day=THURSDAY, periods=["P9"]), "periods"),
        (dict(day=THURSDAY), "periods"),
        (dict(day=date(2026, 11, 24), periods=["P1"]), "day"),  # yesterday
        (dict(day=date(2026, 11, 25), periods=["P1"]), "day"),  # today's P1 is over at 09:50 (it is 09:00 UTC... )
        (dict(day=THURSDAY, until_day=date(2026, 12, 7), starts=time(9, 0), ends=time(10, 0)), "until_day"),
        (dict(day=None, periods=["P1"]), "day"),
        (dict(day=THURSDAY, periods=["P2"], purpose="x" * 201), "purpose"),
    ]
    for kwargs, field in refusals[:5] + refusals[6:]:
        with pytest.raises(ValidationFailed) as refused:
            _book(teacher, asset_id=camera.id, **kwargs)
        assert field in refused.value.field_errors, (kwargs, refused.value.field_errors)


def test_a_slot_in_progress_may_be_booked_but_one_that_is_over_may_not(app, frozen_clock):
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office)
    frozen_clock.advance(minutes=30)  # 09:30: P1 (08:50-09:50) is under way
    assert _book(make_user(), asset_id=camera.id, day=date(2026, 11, 25), periods=["P1"]).periods == "P1"
    frozen_clock.advance(minutes=30)  # 10:00
    with pytest.raises(ValidationFailed, match="passed"):
        _book(make_user(), asset_id=camera.id, day=date(2026, 11, 25), periods=["P1"])


def test_a_slot_over_several_days_is_at_most_five_school_days(app, frozen_clock):
    office = make_user(Role.OFFICE)
    laptop = bookable_asset(office, kind="laptop")
    # Thursday to the next Wednesday is five school days (the weekend does not count).
    booking = _book(make_user(), asset_id=laptop.id, day=THURSDAY, until_day=date(2026, 12, 2), starts=time(9), ends=time(15))
    assert bookings.school_days_between(THURSDAY, date(2026, 12, 2)) == 5
    assert booking.ends_at == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def test_who_may_book_follows_bookable_by(app, frozen_clock):
    office = make_user(Role.OFFICE)
    teacher = make_user(name="Mr B Clarke")
    approver = make_user(Role.APPROVER)
    hidden = make_asset(office, name="Head's laptop")
    office_only = bookable_asset(office, "office", name="Office camera")
    approvers = bookable_asset(office, "approver", name="Approvers' tablet")
    with pytest.raises(Forbidden, match="not bookable"):
        _book(teacher, asset_id=hidden.id, day=THURSDAY, periods=["P1"])
    with pytest.raises(Forbidden, match="office only"):
        _book(teacher, asset_id=office_only.id, day=THURSDAY, periods=["P1"])
    with pytest.raises(Forbidden):
        _book(teacher, asset_id=approvers.id, day=THURSDAY, periods=["P1"])
    assert _book(approver, asset_id=approvers.id, day=THURSDAY, periods=["P1"]).booked_for_id == approver.id
    assert _book(office, asset_id=office_only.id, day=THURSDAY, periods=["P1"]).booked_for_id == office.id
    with write_intent():
        assert [a.id for a in bookings.bookable_assets(db.session, teacher)] == []
        assert {a.id for a in bookings.bookable_assets(db.session, approver)} == {approvers.id}
        assert {a.id for a in bookings.bookable_assets(db.session, office)} == {approvers.id, office_only.id}
    with pytest.raises(NotFound):
        _book(teacher, asset_id=999_999, day=THURSDAY, periods=["P1"])


def test_only_the_office_books_for_someone_else(app, frozen_clock):
    office = make_user(Role.OFFICE, name="Mrs O Office")
    teacher = make_user(name="Mr B Clarke")
    colleague = make_user()
    camera = bookable_asset(office)
    with pytest.raises(Forbidden, match="Only the office"):
        _book(teacher, asset_id=camera.id, for_user_id=colleague.id, day=THURSDAY, periods=["P1"])
    booking = _book(office, asset_id=camera.id, for_user_id=teacher.id, day=THURSDAY, periods=["P1"])
    assert (booking.booked_for_id, booking.booked_by_id) == (teacher.id, office.id)
    (view,) = describe_page(db.session, _events("booking.created"))
    assert view.sentence == f"Mrs O Office booked {camera.name} ({camera.tag}) for Mr B Clarke for Thursday 26/11/2026, P1."


def test_a_clash_names_who_has_it_and_the_next_free_slot(app, frozen_clock):
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office, name="Class camera")
    first = make_user(name="Mr B Clarke")
    make_booking(first, asset_id=camera.id, day=THURSDAY, periods=("P3", "P4"))
    make_booking(first, asset_id=camera.id, day=THURSDAY, periods=("P5",))
    with pytest.raises(bookings.BookingClash) as clash:
        _book(make_user(), asset_id=camera.id, day=THURSDAY, periods=["P4", "P5"])
    assert clash.value.holder == "Mr B Clarke"
    assert "Mr B Clarke has booked it" in clash.value.message
    # Two periods in a row free for it: P6 ends the day alone, so the next pair is Friday's P1-P2.
    assert clash.value.next_free == (datetime(2026, 11, 27, 8, 50, tzinfo=UTC), datetime(2026, 11, 27, 10, 50, tzinfo=UTC))
    assert "Friday 27/11/2026, P1-P2 (08:50-10:50)" in clash.value.message
    assert clash.value.problem_extra["holder"] == "Mr B Clarke"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 2


def test_a_time_range_clash_offers_the_same_length_after_the_clash(app, frozen_clock):
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office)
    make_booking(make_user(name="Miss C Davies"), asset_id=camera.id, day=THURSDAY, periods=("P3",))  # 11:10-12:10
    with pytest.raises(bookings.BookingClash) as clash:
        _book(make_user(), asset_id=camera.id, day=THURSDAY, starts=time(11, 0), ends=time(11, 30))
    assert clash.value.next_free == (datetime(2026, 11, 26, 12, 10, tzinfo=UTC), datetime(2026, 11, 26, 12, 40, tzinfo=UTC))


# School days: weekends and holidays ------------------------------------------------------------------


def _set_holidays(text: str) -> None:
    with write_intent():
        save_settings(db.session, make_user(Role.ADMIN), {"bookings.holidays": [text]})
        db.session.commit()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("21/12/2026 until 01/01/2027", "is not a date or a range of dates"),
        ("31/02/2027", "31/02/2027 is not a date"),
        ("04/01/2027-21/12/2026", "ends before it starts"),
        ("01/01/2027-01/08/2027", "longer than 120 days"),
    ],
)
def test_a_bad_holidays_setting_says_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says):
        school_days.parse_holidays(text)


def test_the_settings_page_checks_stores_and_audits_the_holidays(app, frozen_clock):
    admin = make_user(Role.ADMIN)
    with write_intent():
        with pytest.raises(ValidationFailed) as refused:
            save_settings(db.session, admin, {"bookings.holidays": ["after the nativity play"]})
        assert "DD/MM/YYYY" in refused.value.field_errors["bookings.holidays"][0]
        db.session.rollback()
    _set_holidays("15/02/2027 to 19/02/2027; 21/12/2026-1/1/2027, 27/11/2026")
    assert get_setting(db.session, "bookings.holidays") == "27/11/2026, 21/12/2026-01/01/2027, 15/02/2027-19/02/2027"
    assert school_days.school_holidays(db.session)[0] == (date(2026, 11, 27), date(2026, 11, 27))
    (event,) = [e for e in _events("setting.changed") if e.subject_id == "bookings.holidays"]
    assert json.loads(event.details) == {"from": "", "to": "27/11/2026, 21/12/2026-01/01/2027, 15/02/2027-19/02/2027"}


def test_weekends_and_holidays_cannot_be_booked(app, frozen_clock):
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office)
    teacher = make_user()
    _set_holidays("21/12/2026-01/01/2027")
    with pytest.raises(ValidationFailed) as refused:
        _book(teacher, asset_id=camera.id, day=date(2026, 11, 28), periods=["P1"])
    assert refused.value.field_errors["day"] == ["Saturday 28/11/2026 is a weekend; choose a school day."]
    with pytest.raises(ValidationFailed) as refused:
        _book(teacher, asset_id=camera.id, day=date(2026, 12, 22), starts=time(9, 0), ends=time(10, 0))
    assert refused.value.field_errors["day"] == [
        "22/12/2026 is in a school holiday (21/12/2026 to 01/01/2027); choose a school day."
    ]
    with pytest.raises(ValidationFailed) as refused:
        _book(
            teacher, asset_id=camera.id, day=date(2026, 12, 18), until_day=date(2026, 12, 21), starts=time(9, 0), ends=time(10, 0)
        )
    assert "school holiday" in refused.value.field_errors["until_day"][0]
    assert _book(teacher, asset_id=camera.id, day=date(2026, 12, 18), periods=["P1"]).periods == "P1"  # the last day of term


def test_the_next_free_slot_skips_weekends_and_holidays(app, frozen_clock):
    """Friday is a training day: the next free pair of periods after Thursday's clash is Monday's, not
    Friday's (and never Saturday's); a time range is offered at the same time on the next school day."""
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office, name="Class camera")
    first = make_user(name="Mr B Clarke")
    make_booking(first, asset_id=camera.id, day=THURSDAY, periods=("P3", "P4"))
    make_booking(first, asset_id=camera.id, day=THURSDAY, periods=("P5", "P6"))
    _set_holidays("27/11/2026")
    with pytest.raises(bookings.BookingClash) as clash:
        _book(make_user(), asset_id=camera.id, day=THURSDAY, periods=["P4", "P5"])
    assert clash.value.next_free == (datetime(2026, 11, 30, 8, 50, tzinfo=UTC), datetime(2026, 11, 30, 10, 50, tzinfo=UTC))
    assert "Monday 30/11/2026, P1-P2 (08:50-10:50)" in clash.value.message
    with pytest.raises(bookings.BookingClash) as clash:
        _book(make_user(), asset_id=camera.id, day=THURSDAY, starts=time(15, 0), ends=time(17, 0))
    # After the clash ends at 16:00 it would run into the evening; Thursday evening is still a school day,
    # so 16:00-18:00 is offered; a clash that ends late on a Thursday before a holiday moves to Monday.
    assert clash.value.next_free == (datetime(2026, 11, 26, 16, 0, tzinfo=UTC), datetime(2026, 11, 26, 18, 0, tzinfo=UTC))
    make_booking(first, asset_id=camera.id, day=THURSDAY, periods=(), starts=time(16, 0), ends=time(23, 30))
    with pytest.raises(bookings.BookingClash) as clash:
        _book(make_user(), asset_id=camera.id, day=THURSDAY, starts=time(15, 0), ends=time(17, 0))
    assert clash.value.next_free == (datetime(2026, 11, 30, 15, 0, tzinfo=UTC), datetime(2026, 11, 30, 17, 0, tzinfo=UTC))


def test_no_next_free_slot_inside_a_long_holiday(app, frozen_clock):
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office)
    make_booking(make_user(name="Mr B Clarke"), asset_id=camera.id, day=THURSDAY, periods=("P1", "P2", "P3", "P4", "P5", "P6"))
    _set_holidays("27/11/2026-08/12/2026")
    with pytest.raises(bookings.BookingClash) as clash:
        _book(make_user(), asset_id=camera.id, day=THURSDAY, periods=["P2"])
    assert clash.value.next_free == (datetime(2026, 12, 9, 8, 50, tzinfo=UTC), datetime(2026, 12, 9, 9, 50, tzinfo=UTC))


def test_an_open_loan_clashes_until_its_due_day_ends(app, frozen_clock):
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office)
    lend(office, camera, make_user(name="Mrs E Evans"), due_on=THURSDAY)
    with pytest.raises(bookings.BookingClash, match="Mrs E Evans has it on loan"):
        _book(make_user(), asset_id=camera.id, day=THURSDAY, periods=["P6"])
    assert _book(make_user(), asset_id=camera.id, day=date(2026, 11, 27), periods=["P1"]).periods == "P1"


def test_a_kit_books_every_member_or_nothing(app, frozen_clock):
    office = make_user(Role.OFFICE)
    kit = make_kit(office, members=4)
    member_ids = sorted(m.asset_id for m in kit.members)
    teacher = make_user(name="Mr B Clarke")
    booking = _book(teacher, kit_id=kit.id, day=THURSDAY, periods=["P1"])
    assert sorted(i.asset_id for i in booking.items) == member_ids
    assert booking.asset_id is None and booking.kit_id == kit.id
    # A member alone cannot be booked: it goes with its kit.
    with pytest.raises(Conflict, match="book the kit"):
        _book(teacher, asset_id=member_ids[0], day=THURSDAY, periods=["P2"])
    # One member out on loan (to the booker: nobody else may take a booked kit's member): the whole kit is
    # refused to anyone else, and nothing is written.
    lend(office, db.session.get(type(kit.members[0].asset), member_ids[2]), teacher, due_on=THURSDAY)
    before = db.session.scalar(sa.select(sa.func.count()).select_from(BookingItem))
    with pytest.raises(bookings.BookingClash, match="Mr B Clarke has it on loan"):
        _book(make_user(), kit_id=kit.id, day=THURSDAY, periods=["P2"])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BookingItem)) == before
    (event,) = _events("booking.created")
    (view,) = describe_page(db.session, [event])
    assert view.sentence == f"Mr B Clarke booked {kit.name} for Thursday 26/11/2026, P1."


def test_cancelling_frees_the_slot_and_only_the_owner_or_office_may(app, frozen_clock):
    office = make_user(Role.OFFICE, name="Mrs O Office")
    camera = bookable_asset(office, name="Class camera")
    teacher = make_user(name="Mr B Clarke")
    other = make_user()
    booking = make_booking(teacher, asset_id=camera.id, day=THURSDAY, periods=("P3",))
    for stranger in (other, make_user(Role.APPROVER)):
        with write_intent(), pytest.raises(NotFound):
            bookings.cancel_booking(db.session, stranger, booking.id)
        db.session.rollback()
        with pytest.raises(NotFound):
            bookings.get_booking(db.session, stranger, booking.id)
    with write_intent():
        bookings.cancel_booking(db.session, teacher, booking.id)
        db.session.commit()
    assert booking.status == "cancelled" and booking.cancelled_by_id == teacher.id
    assert [i.active for i in booking.items] == [False]
    with write_intent(), pytest.raises(Conflict, match="cancelled"):
        bookings.cancel_booking(db.session, teacher, booking.id)
    db.session.rollback()
    # The slot is free again, and the office may cancel anyone's booking.
    again = _book(other, asset_id=camera.id, day=THURSDAY, periods=["P3"])
    with write_intent():
        bookings.cancel_booking(db.session, office, again.id)
        db.session.commit()
    sentences = [v.sentence for v in describe_page(db.session, _events("booking.cancelled"))]
    assert sentences == [
        f"Mr B Clarke cancelled their booking of Class camera ({camera.tag}) for Thursday 26/11/2026, P3.",
        f"Mrs O Office cancelled {other.display_name}'s booking of Class camera ({camera.tag}) for Thursday 26/11/2026, P3.",
    ]


def test_my_bookings_and_the_office_day_list(app, frozen_clock):
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office)
    teacher = make_user()
    later = make_booking(teacher, asset_id=camera.id, day=date(2026, 11, 27), periods=("P1",))
    sooner = make_booking(teacher, asset_id=camera.id, day=THURSDAY, periods=("P1",))
    make_booking(make_user(), asset_id=camera.id, day=THURSDAY, periods=("P2",))
    assert [b.id for b in bookings.my_bookings(db.session, teacher)] == [sooner.id, later.id]
    with pytest.raises(Forbidden):
        bookings.bookings_on_day(db.session, teacher, THURSDAY)
    assert len(bookings.bookings_on_day(db.session, office, THURSDAY)) == 2


def test_availability_lists_bookings_and_loans(app, frozen_clock):
    office = make_user(Role.OFFICE)
    kit = make_kit(office, members=2)
    clarke = make_user(name="Mr B Clarke")
    booking = make_booking(clarke, kit_id=kit.id, day=THURSDAY, periods=("P2",))
    lend(office, kit.members[0].asset, clarke, due_on=date(2026, 11, 30))  # only the booker may have it over the booking
    busy = bookings.availability(db.session, make_user(), kit_id=kit.id, start=THURSDAY, end=THURSDAY)
    assert {(b.kind, b.who) for b in busy} == {("booked", "Mr B Clarke"), ("on_loan", "Mr B Clarke")}
    assert {b.booking_id for b in busy if b.kind == "booked"} == {booking.id}
    hidden = make_asset(office)
    with pytest.raises(NotFound):
        bookings.availability(db.session, make_user(), asset_id=hidden.id, start=THURSDAY, end=THURSDAY)


def test_kits_are_managed_by_the_office_and_each_change_is_audited(app, frozen_clock):
    office = make_user(Role.OFFICE, name="Mrs O Office")
    teacher = make_user()
    ipad = make_asset(office, tag="IPAD-900", name="iPad 900", kind="tablet")
    with write_intent():
        with pytest.raises(Forbidden):
            bookings.create_kit(db.session, teacher, name="Trolley", tag="KIT-1")
        with pytest.raises(ValidationFailed) as refused:
            bookings.create_kit(db.session, office, name="", tag="IPAD-900")
        assert set(refused.value.field_errors) == {"name", "tag"}
        kit = bookings.create_kit(db.session, office, name="Year 5 trolley", tag="kit-y5")
        assert kit.tag == "KIT-Y5"
        bookings.add_kit_member(db.session, office, kit.id, "https://school.example/t/ipad-900")
        other = bookings.create_kit(db.session, office, name="Other trolley", tag="KIT-2")
        with pytest.raises(ValidationFailed, match="in Year 5 trolley"):
            bookings.add_kit_member(db.session, office, other.id, "IPAD-900")
        bookings.remove_kit_member(db.session, office, kit.id, ipad.id)
        bookings.set_bookable(db.session, office, kit_id=kit.id, bookable_by="everyone")
        bookings.retire_kit(db.session, office, kit.id)
        db.session.commit()
    sentences = [
        v.sentence
        for v in describe_page(
            db.session,
            list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action.like("kit.%")).order_by(AuditEvent.seq))),
        )
    ]
    assert sentences == [
        "Mrs O Office created the kit Year 5 trolley (KIT-Y5).",
        "Mrs O Office put iPad 900 (IPAD-900) into the kit Year 5 trolley.",
        "Mrs O Office created the kit Other trolley (KIT-2).",
        "Mrs O Office took iPad 900 (IPAD-900) out of the kit Year 5 trolley.",
        "Mrs O Office retired the kit Year 5 trolley.",
    ]
    (changed,) = describe_page(db.session, _events("booking.bookable_changed"))
    assert changed.sentence == "Mrs O Office made Year 5 trolley bookable by all staff."


def test_bookings_are_in_my_data_and_age_out_with_retention(app, frozen_clock):
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office, name="Class camera")
    teacher = make_user()
    booking = make_booking(teacher, asset_id=camera.id, day=THURSDAY, periods=("P1",), purpose="Trip photos")
    exported = export_person(db.session, teacher)
    assert [(b["id"], b["what"], b["purpose"]) for b in exported["bookings"]] == [(booking.id, "Class camera", "Trip photos")]
    with write_intent():
        report = run_retention(db.session, datetime(2027, 6, 1, tzinfo=UTC))
        db.session.commit()
    assert report.bookings == 0
    with write_intent():
        report = run_retention(db.session, datetime(2028, 1, 1, tzinfo=UTC))
        db.session.commit()
    assert report.bookings == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BookingItem)) == 0
    assert _events("retention.erased")[-1].details.count('"bookings":1') == 1


def test_the_demo_school_has_a_trolley_kit_and_a_week_of_bookings(app):
    from app.demo import seed_demo_school
    from app.models import Kit

    with write_intent():
        people = seed_demo_school(db.session, "demo-password-123")
        db.session.commit()
    (trolley,) = db.session.scalars(sa.select(Kit)).all()
    tags = sorted(m.asset.tag for m in trolley.members)
    assert trolley.name == "iPad trolley" and trolley.bookable_by == "everyone"
    assert len([t for t in tags if t.startswith("IPAD-")]) == 30 and "CHG-001" in tags and "IPAD-002" not in tags
    made = list(db.session.scalars(sa.select(Booking).order_by(Booking.starts_at)))
    assert len(made) == 8 and {b.booked_for_id for b in made} == {people[p].id for p in ("bclarke", "cdavies", "eevans")}
    assert len({b.starts_at.date() for b in made}) == 5
    assert {b.thing_name for b in made} == {"iPad trolley", "Class camera", "Visualiser"}


def test_lending_on_the_spot_never_takes_what_someone_else_has_booked(app, frozen_clock):
    from app.services import kit_loans, loans

    office = make_user(Role.OFFICE, name="Ms Office")
    booker, walk_in = make_user(name="Mr B Clarke"), make_user(name="Miss C Davies")
    camera = bookable_asset(office, name="Class camera", tag="CAM-0077")
    make_booking(booker, day=THURSDAY, periods=("P3",), asset_id=camera.id)
    with write_intent(), pytest.raises(Conflict) as refused:
        loans.check_out(db.session, office, camera.id, borrower_id=walk_in.id, due_on=THURSDAY)
    assert str(refused.value) == (
        "CAM-0077 is booked by Mr B Clarke for Thursday 26/11/2026, P3 (11:10-12:10). "
        "Choose a due date before 26/11/2026, or lend something else."
    )
    db.session.rollback()
    # Back the day before: lent. The booker themself may have it over their own booking.
    lend(office, camera, walk_in, due_on=THURSDAY - timedelta(days=1))
    assert db.session.get(type(camera), camera.id).status == "on_loan"

    kit = make_kit(office, members=2)
    make_booking(booker, day=date(2026, 11, 25), periods=("P6",), kit_id=kit.id)  # today, later on
    with (
        write_intent(),
        pytest.raises(Conflict, match=r"booked by Mr B Clarke for Wednesday 25/11/2026, P6 .* cannot be lent now"),
    ):
        kit_loans.check_out_kit(db.session, office, kit.id, borrower_id=walk_in.id, due_on=THURSDAY)
    db.session.rollback()
    with write_intent():
        made = kit_loans.check_out_kit(db.session, office, kit.id, borrower_id=booker.id, due_on=THURSDAY)
        db.session.commit()
    assert len(made) == 2
