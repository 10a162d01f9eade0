"""The week at a glance (issue 17, item 5): free, booked (by whom) and on loan per lesson period, for an
asset, a kit or a kind; a table, a list per day and a printout; statements independent of the asset count."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.database import write_intent
from app.extensions import db
from app.models import Loan, Role
from app.services import booking_week
from app.services.errors import NotFound, ValidationFailed
from app.services.school_settings import save_settings
from tests.booking_loan_factories import make_bookable, make_booking, make_kit
from tests.equipment_factories import lend, make_asset
from tests.factories import make_user, sign_in
from tests.test_statement_counts import counted

MONDAY = date(2026, 11, 23)  # the frozen clock's Wednesday 25/11/2026 is in week 2026-W48
P3_WED = (datetime(2026, 11, 25, 11, 10, tzinfo=UTC), datetime(2026, 11, 25, 12, 10, tzinfo=UTC))


@pytest.fixture
def scene(app, frozen_clock):
    office = make_user(Role.OFFICE, name="Ms O Brennan")
    clarke, davies = make_user(name="Mr B Clarke"), make_user(name="Ms C Davies")
    camera = make_bookable(make_asset(office, tag="CAM-001", name="Class camera"))
    return office, clarke, davies, camera


def _cell(view, weekday: int, period: str):
    return next(cell for cell in view.days[weekday].cells if cell.period.label == period)


def test_weeks_are_read_and_written_the_iso_way():
    assert booking_week.parse_week("2026-W48", date(2026, 11, 25)) == MONDAY
    assert booking_week.parse_week("", date(2026, 11, 25)) == MONDAY
    assert booking_week.parse_week("", date(2026, 11, 28)) == date(2026, 11, 30)  # Saturday: next week
    assert booking_week.week_text(MONDAY) == "2026-W48"
    for bad in ("2026-48", "2026-W54", "<script>", "1900-W01"):
        with pytest.raises(ValidationFailed):
            booking_week.parse_week(bad, date(2026, 11, 25))


def test_an_assets_week_shows_free_booked_by_whom_and_on_loan(scene):
    office, clarke, _davies, camera = scene
    make_booking(clarke, *P3_WED, asset=camera)
    with write_intent():
        loan = lend(office, camera, clarke, due_on=date(2026, 11, 26))  # only the booker may have it over the booking
    del loan
    view = booking_week.asset_week(db.session, clarke, camera.id, MONDAY)
    assert [p.label for p in view.periods] == ["P1", "P2", "P3", "P4", "P5", "P6"]
    assert [row.day for row in view.days] == [MONDAY + timedelta(days=n) for n in range(5)]
    assert _cell(view, 0, "P1").state == "free"  # Monday, before the loan
    assert _cell(view, 2, "P1").state == "on_loan"  # lent on Wednesday at 09:00 (the frozen clock)
    assert _cell(view, 2, "P3").text == "On loan to Mr B Clarke"  # the loan wins over the booking
    assert _cell(view, 3, "P6").state == "on_loan"  # due Thursday: out all day
    assert _cell(view, 4, "P1").state == "free" and _cell(view, 4, "P1").bookable
    assert not _cell(view, 0, "P1").bookable  # Monday is over


def test_a_booking_shows_who_booked_it(scene):
    _office, clarke, davies, camera = scene
    make_booking(clarke, *P3_WED, asset=camera)
    view = booking_week.asset_week(db.session, davies, camera.id, MONDAY)
    cell = _cell(view, 2, "P3")
    assert (cell.state, cell.text, cell.bookable) == ("booked", "Booked by Mr B Clarke", False)
    assert _cell(view, 2, "P4").state == "free"


def test_a_kit_is_free_only_where_every_member_is(scene):
    office, clarke, _davies, _camera = scene
    kit, members = make_kit(office, 4)
    make_booking(clarke, *P3_WED, kit=kit)
    lend(office, members[0], clarke, due_on=date(2026, 11, 25))
    view = booking_week.kit_week(db.session, clarke, kit.id, MONDAY)
    assert view.title == "iPad trolley (KIT-IPAD, 4 items)"
    assert _cell(view, 2, "P1").text == "3 of 4 free" and _cell(view, 2, "P1").state == "partly"
    assert _cell(view, 2, "P3").text == "Booked by Mr B Clarke (1 on loan)"
    assert _cell(view, 3, "P1").state == "free"
    del members


def test_a_kind_counts_the_free_ones_and_staff_see_only_what_they_may_book(scene):
    office, clarke, _davies, camera = scene
    others = [make_bookable(make_asset(office, tag=f"CAM-1{n}", name=f"Camera {n}")) for n in range(3)]
    make_bookable(make_asset(office, tag="CAM-OFF", name="Office camera"), "office")
    make_asset(office, tag="CAM-NOT", name="Not bookable")
    make_booking(clarke, *P3_WED, asset=others[0])
    staff_view = booking_week.kind_week(db.session, clarke, "camera", MONDAY)
    assert staff_view.asset_count == 4
    assert _cell(staff_view, 2, "P3").text == "3 of 4 free"
    office_view = booking_week.kind_week(db.session, office, "camera", MONDAY)
    assert office_view.asset_count == 5
    with pytest.raises(NotFound):
        booking_week.kind_week(db.session, clarke, "spaceship", MONDAY)
    del camera


def _kind_by_asset(viewer, ids: list[int]) -> list[tuple[str, str, list[int]]]:
    """The kind's week worked out the slow, obvious way: every asset's own week, cell by cell."""
    weeks = [booking_week.asset_week(db.session, viewer, asset_id, MONDAY) for asset_id in ids]
    expected = []
    for day in range(5):
        for slot in range(len(weeks[0].days[day].cells)):
            cells = [week.days[day].cells[slot] for week in weeks]
            free = [asset_id for asset_id, cell in zip(ids, cells, strict=True) if cell.state == "free"]
            lent = sum(cell.state == "on_loan" for cell in cells)
            if len(free) == len(ids):
                expected.append(("free", f"{len(ids)} of {len(ids)} free", free[:1]))
            elif free:
                expected.append(("partly", f"{len(free)} of {len(ids)} free", free[:1]))
            else:
                expected.append(("on_loan", "All on loan", []) if lent == len(ids) else ("booked", "None free", []))
    return expected


def _kind_cells(viewer) -> list[tuple[str, str, list[int]]]:
    view = booking_week.kind_week(db.session, viewer, "camera", MONDAY)
    return [(cell.state, cell.text, cell.free_ids) for row in view.days for cell in row.cells]


def test_a_kinds_counts_from_the_database_agree_with_each_assets_week(scene):
    """The kind's counts are grouped in SQL; each asset's week is worked out interval by interval. Bookings
    of whole periods and of several periods, a booked camera also on loan, an overdue loan, and then one
    camera booked twice within one period (counted once: the database's groups are read one by one then)."""
    office, clarke, davies, camera = scene
    cams = [camera] + [make_bookable(make_asset(office, tag=f"CAM-2{n}", name=f"Camera {n}")) for n in range(5)]
    ids = sorted(c.id for c in cams)
    wed, thu = date(2026, 11, 25), date(2026, 11, 26)

    def at(day: date, hour: int, minute: int) -> datetime:
        return datetime.combine(day, datetime.min.time(), tzinfo=UTC).replace(hour=hour, minute=minute)

    make_booking(clarke, *P3_WED, asset=cams[1])
    make_booking(clarke, *P3_WED, asset=cams[2])
    make_booking(davies, at(thu, 8, 50), at(thu, 10, 50), asset=cams[4], periods="P1-P2")
    make_booking(davies, at(wed, 11, 10), at(wed, 13, 10), asset=cams[0], periods="P3-P4")
    with write_intent():
        lend(office, cams[2], clarke, due_on=thu)  # booked and on loan: one busy camera, on loan
        overdue = lend(office, cams[3], davies, due_on=wed)
        db.session.get(Loan, overdue.id).due_on = MONDAY  # overdue: out until the end of today
        db.session.commit()
    expected = _kind_by_asset(office, ids)
    assert _kind_cells(office) == expected
    assert _cell_tuple(office, 2, 2) == ("partly", "2 of 6 free", [cams[4].id])  # Wednesday P3
    make_booking(davies, at(thu, 14, 15), at(thu, 14, 30), asset=cams[5], periods=None)
    make_booking(davies, at(thu, 14, 40), at(thu, 15, 0), asset=cams[5], periods=None)
    make_booking(clarke, at(thu, 14, 20), at(thu, 14, 50), asset=cams[4], periods=None)
    expected = _kind_by_asset(office, ids)
    assert _kind_cells(office) == expected
    assert _cell_tuple(office, 3, 4)[1] == "3 of 6 free"  # Thursday P5: the one lent, and two booked (one twice)


def _cell_tuple(viewer, weekday: int, slot: int) -> tuple[str, str, list[int]]:
    return _kind_cells(viewer)[weekday * 6 + slot]


def test_staff_cannot_see_the_week_of_something_not_bookable(scene):
    office, clarke, _davies, _camera = scene
    hidden = make_asset(office, tag="LAP-9", name="Head's laptop")
    kit, _ = make_kit(office, 2, bookable_by=None)
    with pytest.raises(NotFound):
        booking_week.asset_week(db.session, clarke, hidden.id, MONDAY)
    with pytest.raises(NotFound):
        booking_week.kit_week(db.session, clarke, kit.id, MONDAY)
    assert booking_week.asset_week(db.session, office, hidden.id, MONDAY).can_book is False


def test_statements_do_not_grow_with_the_number_of_assets(app, scene):
    office, clarke, davies, _camera = scene
    sign_in_client = app.test_client()
    sign_in(sign_in_client, davies)

    def statements_for_kind() -> int:
        with counted(app) as statements:
            assert sign_in_client.get("/bookings/week/kind/tablet?week=2026-W48").status_code == 200
        return len(statements)

    few = [make_bookable(make_asset(office, tag=f"TAB-{n:03d}", kind="tablet")) for n in range(3)]
    make_booking(clarke, *P3_WED, asset=few[0])
    lend(office, few[1], clarke)
    small = statements_for_kind()
    many = [make_bookable(make_asset(office, tag=f"TAB-{n:03d}", kind="tablet")) for n in range(3, 40)]
    for asset in many[:10]:
        make_booking(clarke, *P3_WED, asset=asset)
    for asset in many[10:15]:
        lend(office, asset, davies)
    assert statements_for_kind() == small


# Pages ----------------------------------------------------------------------------------------------


def test_the_week_page_is_a_table_and_a_list_per_day_with_links_to_book(app, client, scene):
    _office, clarke, davies, camera = scene
    make_booking(clarke, *P3_WED, asset=camera)
    sign_in(client, davies)
    page = client.get(f"/bookings/week/asset/{camera.id}?week=2026-W48")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<caption>Class camera (CAM-001), Monday 23/11/2026 to Friday 27/11/2026</caption>" in text
    assert '<th scope="row">Wednesday' in text and '<th scope="col">P3' in text
    assert text.count("Booked by Mr B Clarke") == 2  # the table and the phone's list
    assert f"/bookings/new?thing=asset-{camera.id}&amp;day=2026-11-27&amp;period=P1" in text
    assert "week=2026-W47" in text and "week=2026-W49" in text
    assert client.get(f"/bookings/week/asset/{camera.id}?week=nonsense").status_code == 422
    chooser = client.get("/bookings/week").get_data(as_text=True)
    assert f"/bookings/week/asset/{camera.id}" in chooser and "/bookings/week/kind/camera" in chooser


def test_staff_get_no_such_thing_for_a_week_they_may_not_see(app, client, scene):
    office, _clarke, davies, _camera = scene
    hidden = make_asset(office, tag="LAP-9", name="Head's laptop")
    sign_in(client, davies)
    assert client.get(f"/bookings/week/asset/{hidden.id}").status_code == 404
    assert client.get("/bookings/week/kit/999999").status_code == 404
    assert client.get("/bookings/week/kind/spaceship").status_code == 404


def test_a_kind_with_nothing_bookable_says_so_instead_of_a_week_of_0_of_0_free(app, client, scene):
    office, _clarke, davies, _camera = scene
    make_asset(office, tag="IPAD-1", name="iPad 1", kind="tablet")  # not bookable
    sign_in(client, davies)
    page = client.get("/bookings/week/kind/tablet?week=2026-W48")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Nothing of this kind can be booked by you." in text
    assert "0 of 0 free" not in text and "<table" not in text
    assert "<table" in client.get("/bookings/week/kind/camera?week=2026-W48").get_data(as_text=True)


# API ------------------------------------------------------------------------------------------------


def test_the_api_gives_the_same_week(app, client, scene):
    _office, clarke, davies, camera = scene
    make_booking(clarke, *P3_WED, asset=camera)
    sign_in(client, davies)
    answer = client.get(f"/api/v1/availability/week?asset_id={camera.id}&week=2026-W48")
    assert answer.status_code == 200
    week = answer.get_json()
    assert (week["scope"], week["week"], week["monday"], week["asset_count"]) == ("asset", "2026-W48", "2026-11-23", 1)
    wednesday = week["days"][2]
    assert wednesday["date"] == "2026-11-25"
    p3 = next(slot for slot in wednesday["slots"] if slot["period"] == "P3")
    assert p3 == {"period": "P3", "state": "booked", "text": "Booked by Mr B Clarke", "free": False}
    kind = client.get("/api/v1/availability/week?kind=camera&week=2026-W48").get_json()
    assert kind["scope"] == "kind" and kind["asset_count"] == 1
    for bad in ("", "?asset_id=1&kind=camera", "?asset_id=abc", "?asset_id=0", f"?asset_id={camera.id}&week=soon"):
        refused = client.get(f"/api/v1/availability/week{bad}")
        assert refused.status_code in (400, 422) and refused.content_type == "application/problem+json", bad
    assert client.get("/api/v1/availability/week?kit_id=999999").status_code == 404


def test_a_school_holiday_says_so_and_offers_nothing_to_book(app, scene):
    office, clarke, _davies, camera = scene
    admin = make_user(Role.ADMIN)
    with write_intent():
        save_settings(db.session, admin, {"bookings.holidays": ["27/11/2026"]})  # Friday: a training day
        db.session.commit()
    for view in (
        booking_week.asset_week(db.session, clarke, camera.id, MONDAY),
        booking_week.kind_week(db.session, clarke, "camera", MONDAY),
    ):
        friday = [(cell.state, cell.text, cell.bookable) for cell in view.days[4].cells]
        assert friday == [("holiday", "School holiday", False)] * 6
        assert _cell(view, 3, "P1").bookable and view.has_holiday
    client = app.test_client()
    sign_in(client, clarke)
    page = client.get(f"/bookings/week/asset/{camera.id}?week=2026-W48").get_data(as_text=True)
    assert "School holiday" in page and "day=2026-11-27" not in page
    slots = client.get("/api/v1/availability/week?kind=camera&week=2026-W48").get_json()["days"][4]["slots"]
    assert {(s["state"], s["free"]) for s in slots} == {("holiday", False)}
    del office
