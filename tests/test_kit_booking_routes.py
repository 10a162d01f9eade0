"""The office's kit and booking pages through the test client: a kit label opens the kit, lends all of
it, takes it back naming what is missing; a booked label in its slot offers the one-tap hand-over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.clock import local_today
from app.extensions import db
from app.models import Booking, BookingStatus, Loan, Role
from tests.booking_loan_factories import make_booking, make_kit
from tests.equipment_factories import make_asset, page_csrf_token
from tests.factories import make_user, sign_in


@pytest.fixture
def office(app):
    return make_user(Role.OFFICE, name="Ms Office")


@pytest.fixture
def teacher(app):
    return make_user(name="Mr Teacher")


@pytest.fixture
def office_client(client, office):
    sign_in(client, office)
    return client


def _open_loans() -> list[Loan]:
    return list(db.session.scalars(sa.select(Loan).where(Loan.returned_at.is_(None))))


def test_a_kit_label_opens_the_kit_and_lends_all_of_it(office_client, office, teacher):
    kit, members = make_kit(office, 30)
    page = office_client.get("/t/KIT-IPAD").get_data(as_text=True)
    assert "iPad trolley" in page and "Check out all 30" in page and "IPAD-30" in page
    token = page_csrf_token(office_client)
    form = office_client.get(f"/equipment/kits/{kit.id}/check-out").get_data(as_text=True)
    assert "Lend all 30" in form and "Mr Teacher" in form
    bad = office_client.post(
        f"/equipment/kits/{kit.id}/check-out", data={"csrf_token": token, "borrower_id": "0", "purpose": "Trip"}
    )
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "Choose who is borrowing it." in text and 'value="Trip"' in text
    due = (local_today() + timedelta(days=1)).isoformat()
    good = office_client.post(
        f"/equipment/kits/{kit.id}/check-out", data={"csrf_token": token, "borrower_id": str(teacher.id), "due_on": due}
    )
    assert good.status_code == 302 and good.headers["Location"].endswith("/t/KIT-IPAD")
    assert len(_open_loans()) == 30
    shown = office_client.get("/t/KIT-IPAD").get_data(as_text=True)
    assert "All 30 items of iPad trolley are lent to Mr Teacher" in shown and "Check in the kit" in shown
    again = office_client.post(
        f"/equipment/kits/{kit.id}/check-out", data={"csrf_token": token, "borrower_id": str(teacher.id), "due_on": due}
    )
    assert again.status_code == 409 and "is on loan to Mr Teacher" in again.get_data(as_text=True)
    del members


def test_kit_check_in_names_the_members_that_did_not_come_back(office_client, office, teacher):
    kit, members = make_kit(office, 30)
    token = page_csrf_token(office_client)
    due = local_today().isoformat()
    office_client.post(
        f"/equipment/kits/{kit.id}/check-out", data={"csrf_token": token, "borrower_id": str(teacher.id), "due_on": due}
    )
    form = office_client.get(f"/equipment/kits/{kit.id}/check-in").get_data(as_text=True)
    assert form.count('name="back"') == 30 and "checked" in form
    back = [str(a.id) for a in members if a.tag not in {"IPAD-07", "IPAD-19"}]
    answer = office_client.post(
        f"/equipment/kits/{kit.id}/check-in",
        data={"csrf_token": token, "back": back, f"condition-{members[0].id}": "Scratched", "damaged": [str(members[0].id)]},
    )
    assert answer.status_code == 302
    shown = office_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "2 of 30 not returned: IPAD-07, IPAD-19" in shown
    assert sorted(loan.asset.tag for loan in _open_loans()) == ["IPAD-07", "IPAD-19"]
    too_long = office_client.post(
        f"/equipment/kits/{kit.id}/check-in",
        data={"csrf_token": token, "back": [str(members[6].id)], f"condition-{members[6].id}": "x" * 501},
    )
    assert too_long.status_code == 422 and "x" * 501 in too_long.get_data(as_text=True)


def test_staff_cannot_use_the_kit_pages(client, office, teacher):
    kit, _ = make_kit(office, 2)
    sign_in(client, teacher)
    token = page_csrf_token(client)
    for path in (f"/equipment/kits/{kit.id}/check-out", f"/equipment/kits/{kit.id}/check-in"):
        assert client.get(path).status_code == 403
        assert client.post(path, data={"csrf_token": token, "borrower_id": str(teacher.id)}).status_code == 403
    assert client.post("/equipment/bookings/1/collect", data={"csrf_token": token}).status_code == 403
    assert not _open_loans()


def test_a_booked_camera_scanned_in_its_slot_is_lent_to_the_booker_with_one_tap(office_client, office, teacher, frozen_clock):
    camera = make_asset(office, tag="CAM-001", name="Class camera")
    booking = make_booking(
        teacher, datetime(2026, 11, 25, 11, 10, tzinfo=UTC), datetime(2026, 11, 25, 12, 10, tzinfo=UTC), asset=camera
    )
    frozen_clock.set(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    assert "Lend to Mr Teacher" not in office_client.get("/t/CAM-001").get_data(as_text=True)  # not in its slot yet
    frozen_clock.set(datetime(2026, 11, 25, 11, 2, tzinfo=UTC))
    page = office_client.get("/t/CAM-001").get_data(as_text=True)
    assert "Booked by Mr Teacher" in page and "Lend to Mr Teacher" in page and "P3 (11:10-12:10)" in page
    assert "Lend to Mr Teacher" in office_client.get(f"/equipment/{camera.id}/check-out").get_data(as_text=True)
    token = page_csrf_token(office_client)
    answer = office_client.post(f"/equipment/bookings/{booking.id}/collect", data={"csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/equipment/{camera.id}")
    (loan,) = _open_loans()
    assert loan.borrower_id == teacher.id and loan.due_on.isoformat() == "2026-11-25"
    assert db.session.get(Booking, booking.id).status == BookingStatus.COLLECTED.value
    twice = office_client.post(f"/equipment/bookings/{booking.id}/collect", data={"csrf_token": token})
    assert twice.status_code == 302
    assert "already been collected" in office_client.get(twice.headers["Location"]).get_data(as_text=True)
    assert office_client.post("/equipment/bookings/999999/collect", data={"csrf_token": token}).status_code == 404


def test_the_borrower_accepts_the_terms_for_a_whole_kit_with_one_tap(client, office, teacher, app):
    kit, _ = make_kit(office, 3)
    sign_in(client, office)
    token = page_csrf_token(client)
    client.post(
        f"/equipment/kits/{kit.id}/check-out",
        data={"csrf_token": token, "borrower_id": str(teacher.id), "due_on": local_today().isoformat()},
    )
    first = min(loan.id for loan in _open_loans())
    client.post("/sign-out", data={"csrf_token": token})
    sign_in(client, teacher)
    page = client.get(f"/loans/{first}/terms").get_data(as_text=True)
    assert "all 3 items lent to you together" in page
    answer = client.post(f"/loans/{first}/terms", data={"csrf_token": page_csrf_token(client)})
    assert answer.status_code == 302
    assert all(loan.terms_accepted_via == "own_phone" for loan in _open_loans())


def test_scanning_any_member_of_a_booked_kit_offers_the_whole_kit_to_the_booker(office_client, office, teacher, frozen_clock):
    kit, members = make_kit(office, 3)
    booking = make_booking(
        teacher, datetime(2026, 11, 25, 11, 10, tzinfo=UTC), datetime(2026, 11, 25, 12, 10, tzinfo=UTC), kit=kit
    )
    frozen_clock.set(datetime(2026, 11, 25, 11, 2, tzinfo=UTC))
    page = office_client.get(f"/t/{members[1].tag}").get_data(as_text=True)
    assert "Booked by Mr Teacher" in page and "iPad trolley (3 items) is lent together" in page
    assert f'action="/equipment/bookings/{booking.id}/collect"' in page
