"""Booking pages and API through the test client (issue 17): staff book and cancel their own bookings, the
office books for others, sets who may book what and manages kits; forms keep what was typed; the API
answers problem details naming who has the slot and the next free one."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, Booking, Kit, Role, SchoolAsset
from tests.booking_factories import bookable_asset, make_booking, make_kit
from tests.equipment_factories import api_headers, make_asset, page_csrf_token
from tests.factories import make_user, sign_in

THURSDAY = date(2026, 11, 26)  # the frozen clock is Wednesday 25/11/2026 09:00 UTC


@pytest.fixture
def office(app):
    return make_user(Role.OFFICE, name="Ms Office")


@pytest.fixture
def teacher(app):
    return make_user(name="Mr Teacher")


def _events(action: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def test_staff_book_from_the_form_and_errors_keep_what_was_typed(app, client, office, teacher, frozen_clock):
    camera = bookable_asset(office, name="Class camera")
    make_asset(office, name="Head's laptop")  # not bookable: not offered
    sign_in(client, teacher)
    page = client.get("/bookings/new").get_data(as_text=True)
    assert "Class camera" in page and "Head&#39;s laptop" not in page and "P3 11:10-12:10" in page
    assert 'value="2026-11-25"' in page  # today by default
    token = page_csrf_token(client, "/bookings/new")
    bad = client.post(
        "/bookings/new",
        data={
            "csrf_token": token,
            "thing": f"asset-{camera.id}",
            "day": "2026-11-26",
            "periods": ["P1", "P3"],
            "purpose": "Bug hunt",
        },
    )
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "Choose periods next to each other" in text and 'value="Bug hunt"' in text
    good = client.post(
        "/bookings/new",
        data={
            "csrf_token": token,
            "thing": f"asset-{camera.id}",
            "day": "2026-11-26",
            "periods": ["P3", "P4"],
            "purpose": "Bug hunt",
        },
    )
    assert good.status_code == 302 and good.headers["Location"].endswith("/bookings")
    mine = client.get("/bookings").get_data(as_text=True)
    assert "Class camera" in mine and "P3-P4 (11:10-13:10)" in mine and "Bug hunt" in mine
    # The same slot again: refused with who has it and the next free slot, what was typed kept.
    again = client.post(
        "/bookings/new",
        data={"csrf_token": token, "thing": f"asset-{camera.id}", "day": "2026-11-26", "periods": ["P4"], "purpose": "Again"},
    )
    text = again.get_data(as_text=True)
    assert again.status_code == 409
    assert "Mr Teacher has booked it" in text and "The next free slot is Thursday 26/11/2026, P5 (14:10-15:10)" in text
    assert 'value="Again"' in text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 1


def test_a_time_range_from_the_form(app, client, office, teacher, frozen_clock):
    camera = bookable_asset(office)
    sign_in(client, teacher)
    token = page_csrf_token(client, "/bookings/new")
    bad = client.post(
        "/bookings/new", data={"csrf_token": token, "thing": f"asset-{camera.id}", "day": "2026-11-26", "starts": "14:00"}
    )
    assert bad.status_code == 422 and "Enter the time you will bring it back by" in bad.get_data(as_text=True)
    good = client.post(
        "/bookings/new",
        data={"csrf_token": token, "thing": f"asset-{camera.id}", "day": "2026-11-26", "starts": "14:00", "ends": "15:30"},
    )
    assert good.status_code == 302
    booking = db.session.scalar(sa.select(Booking))
    assert booking.periods is None and booking.booked_for_id == teacher.id


def test_staff_cannot_book_what_only_the_office_may_nor_for_others(app, client, office, teacher, frozen_clock):
    office_camera = bookable_asset(office, "office")
    colleague = make_user()
    sign_in(client, teacher)
    token = page_csrf_token(client, "/bookings/new")
    refused = client.post(
        "/bookings/new", data={"csrf_token": token, "thing": f"asset-{office_camera.id}", "day": "2026-11-26", "periods": ["P1"]}
    )
    assert refused.status_code == 403 and "office only" in refused.get_data(as_text=True)
    everyone = bookable_asset(office)
    # A staff member's form has no "for" field; a forged one is ignored, the booking is theirs.
    client.post(
        "/bookings/new",
        data={
            "csrf_token": token,
            "thing": f"asset-{everyone.id}",
            "day": "2026-11-26",
            "periods": ["P1"],
            "for_user_id": colleague.id,
        },
    )
    assert db.session.scalar(sa.select(Booking.booked_for_id)) == teacher.id


def test_the_office_books_for_someone_and_sees_the_day(app, client, office, teacher, frozen_clock):
    kit = make_kit(office, members=3, name="iPad trolley")
    sign_in(client, office)
    page = client.get("/bookings/new").get_data(as_text=True)
    assert "Who is it for?" in page and "iPad trolley (kit of 3)" in page
    token = page_csrf_token(client, "/bookings/new")
    done = client.post(
        "/bookings/new",
        data={"csrf_token": token, "thing": f"kit-{kit.id}", "for_user_id": teacher.id, "day": "2026-11-26", "periods": ["P2"]},
    )
    assert done.status_code == 302 and "/bookings/day?day=2026-11-26" in done.headers["Location"]
    day = client.get("/bookings/day?day=2026-11-26").get_data(as_text=True)
    assert "iPad trolley" in day and "Mr Teacher" in day and "<caption>" in day
    booking = db.session.scalar(sa.select(Booking))
    assert (booking.booked_for_id, booking.booked_by_id, len(booking.items)) == (teacher.id, office.id, 3)
    assert client.get("/bookings/day?day=not-a-date").status_code == 200  # today instead


def test_cancel_asks_first_and_only_for_the_owner_or_office(app, client, office, teacher, frozen_clock):
    camera = bookable_asset(office, name="Class camera")
    booking = make_booking(teacher, asset_id=camera.id, day=THURSDAY, periods=("P3",))
    stranger = make_user()
    sign_in(client, stranger)
    assert client.get(f"/bookings/{booking.id}/cancel").status_code == 404
    token = page_csrf_token(client, "/bookings")
    assert client.post(f"/bookings/{booking.id}/cancel", data={"csrf_token": token, "confirmed": "yes"}).status_code == 404
    client.post("/sign-out", data={"csrf_token": token})
    sign_in(client, teacher)
    confirm = client.get(f"/bookings/{booking.id}/cancel").get_data(as_text=True)
    assert "Cancel the booking of Class camera?" in confirm and "Thursday 26/11/2026, P3" in confirm
    token = page_csrf_token(client, "/bookings")
    skipped = client.post(f"/bookings/{booking.id}/cancel", data={"csrf_token": token})
    assert skipped.status_code == 303 and db.session.get(Booking, booking.id).status == "booked"
    done = client.post(f"/bookings/{booking.id}/cancel", data={"csrf_token": token, "confirmed": "yes"})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == "cancelled"
    assert _events("booking.cancelled") == 1


def test_the_office_sets_who_may_book_an_asset_from_its_page(app, client, office, teacher):
    asset = make_asset(office, name="Visualiser")
    sign_in(client, office)
    page = client.get(f"/equipment/{asset.id}").get_data(as_text=True)
    assert "Who may book it?" in page
    token = page_csrf_token(client, f"/equipment/{asset.id}")
    assert (
        client.post(f"/equipment/{asset.id}/bookable", data={"csrf_token": token, "bookable_by": "everyone"}).status_code == 302
    )
    assert db.session.get(SchoolAsset, asset.id).bookable_by == "everyone"
    client.post(f"/equipment/{asset.id}/bookable", data={"csrf_token": token, "bookable_by": "nonsense"})
    assert db.session.get(SchoolAsset, asset.id).bookable_by == "everyone"
    assert _events("booking.bookable_changed") == 1


def test_the_office_manages_kits(app, client, office):
    make_asset(office, tag="IPAD-501", name="iPad 501", kind="tablet")
    sign_in(client, office)
    token = page_csrf_token(client, "/bookings/kits")
    bad = client.post("/bookings/kits", data={"csrf_token": token, "name": "Year 5 trolley", "tag": "bad tag!"})
    assert bad.status_code == 422 and 'value="Year 5 trolley"' in bad.get_data(as_text=True)
    made = client.post(
        "/bookings/kits", data={"csrf_token": token, "name": "Year 5 trolley", "tag": "kit-y5", "bookable_by": "everyone"}
    )
    kit = db.session.scalar(sa.select(Kit))
    assert made.status_code == 302 and made.headers["Location"].endswith(f"/bookings/kits/{kit.id}")
    unknown = client.post(f"/bookings/kits/{kit.id}", data={"csrf_token": token, "tag": "NOPE-1"})
    assert unknown.status_code == 422 and "No equipment has that tag" in unknown.get_data(as_text=True)
    assert client.post(f"/bookings/kits/{kit.id}", data={"csrf_token": token, "tag": "ipad-501"}).status_code == 302
    page = client.get(f"/bookings/kits/{kit.id}").get_data(as_text=True)
    assert "IPAD-501" in page and "KIT-Y5" in page and "<svg" in page
    asset_id = db.session.scalar(sa.select(SchoolAsset.id).where(SchoolAsset.tag == "IPAD-501"))
    client.post(f"/bookings/kits/{kit.id}/members/{asset_id}/remove", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(Kit, kit.id).members == []
    client.post(f"/bookings/kits/{kit.id}/bookable", data={"csrf_token": token, "bookable_by": "office"})
    assert db.session.get(Kit, kit.id).bookable_by == "office"
    assert "Retire the kit" in client.get(f"/bookings/kits/{kit.id}/retire").get_data(as_text=True)
    client.post(f"/bookings/kits/{kit.id}/retire", data={"csrf_token": token, "confirmed": "yes"})
    db.session.expire_all()
    assert db.session.get(Kit, kit.id).is_retired


def test_staff_cannot_reach_the_office_pages(app, client, office, teacher):
    kit = make_kit(office, members=1)
    asset = make_asset(office)
    sign_in(client, teacher)
    token = page_csrf_token(client, "/bookings")
    for path in ("/bookings/day", "/bookings/kits", f"/bookings/kits/{kit.id}", f"/bookings/kits/{kit.id}/retire"):
        assert client.get(path).status_code == 403, path
    for path in (f"/equipment/{asset.id}/bookable", f"/bookings/kits/{kit.id}/bookable", "/bookings/kits"):
        assert (
            client.post(path, data={"csrf_token": token, "bookable_by": "everyone", "name": "x", "tag": "X-1"}).status_code == 403
        )


# API -------------------------------------------------------------------------------------------------


def test_the_api_books_lists_and_cancels(app, client, office, teacher, frozen_clock):
    camera = bookable_asset(office, name="Class camera")
    sign_in(client, teacher)
    headers = api_headers(client)
    made = client.post(
        "/api/v1/bookings",
        json={"asset_id": camera.id, "day": "2026-11-26", "periods": ["P3"], "until_day": None},
        headers=headers,
    )
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert (body["what"], body["periods"], body["status"], body["booked_for"]["name"]) == (
        "Class camera",
        "P3",
        "booked",
        "Mr Teacher",
    )
    assert body["starts_at"] == "2026-11-26T11:10:00Z" or body["starts_at"].startswith("2026-11-26T11:10:00")
    clash = client.post(
        "/api/v1/bookings", json={"asset_id": camera.id, "day": "2026-11-26", "starts": "11:30", "ends": "12:00"}, headers=headers
    )
    problem = clash.get_json()
    assert clash.status_code == 409 and clash.headers["Content-Type"].startswith("application/problem+json")
    assert problem["holder"] == "Mr Teacher" and problem["next_free"]["starts_at"].startswith("2026-11-26T12:10")
    bad = client.post("/api/v1/bookings", json={"asset_id": camera.id, "day": "2026-11-26", "starts": "9"}, headers=headers)
    assert bad.status_code == 422 and "starts" in bad.get_json()["errors"]
    listed = client.get("/api/v1/bookings", headers=headers).get_json()["items"]
    assert [b["id"] for b in listed] == [body["id"]]
    assert client.get(f"/api/v1/bookings/{body['id']}", headers=headers).status_code == 200
    busy = client.get(f"/api/v1/availability?asset_id={camera.id}&from=2026-11-26&to=2026-11-27", headers=headers).get_json()
    assert [(b["kind"], b["who"]) for b in busy["busy"]] == [("booked", "Mr Teacher")]
    cancelled = client.post(f"/api/v1/bookings/{body['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert client.post(f"/api/v1/bookings/{body['id']}/cancel", headers=headers).status_code == 409
    assert client.get("/api/v1/bookings?day=2026-11-26", headers=headers).status_code == 403
    assert client.get("/api/v1/availability?from=2026-11-26", headers=headers).status_code == 422
    assert client.get("/api/v1/availability?asset_id=x", headers=headers).status_code == 400


def test_the_api_hides_other_peoples_bookings_and_lists_kits(app, client, office, teacher, frozen_clock):
    camera = bookable_asset(office)
    theirs = make_booking(make_user(), asset_id=camera.id, day=THURSDAY, periods=("P1",))
    make_kit(office, members=2, name="Open trolley")
    make_kit(office, members=2, bookable_by="office", name="Office trolley")
    sign_in(client, teacher)
    headers = api_headers(client)
    assert client.get(f"/api/v1/bookings/{theirs.id}", headers=headers).status_code == 404
    assert client.post(f"/api/v1/bookings/{theirs.id}/cancel", headers=headers).status_code == 404
    kits = client.get("/api/v1/kits", headers=headers).get_json()["items"]
    assert [k["name"] for k in kits] == ["Open trolley"] and len(kits[0]["members"]) == 2


def test_a_free_cell_of_the_week_view_opens_the_form_filled_in(app, client, office, teacher, frozen_clock):
    camera = bookable_asset(office, name="Class camera")
    sign_in(client, teacher)
    page = client.get(f"/bookings/new?thing=asset-{camera.id}&day=2026-11-26&period=P3").get_data(as_text=True)
    assert f'<option selected value="asset-{camera.id}">' in page or f'value="asset-{camera.id}" selected' in page
    assert 'value="2026-11-26"' in page
    assert '<input checked id="periods-2" name="periods" type="checkbox" value="P3">' in page
    odd = client.get("/bookings/new?day=next-tuesday&period=P99&thing=asset-999999").get_data(as_text=True)
    assert 'value="2026-11-25"' in odd and "checked" not in odd  # unknown values fall back to the empty form
