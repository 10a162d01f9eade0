"""No double booking, by the database (issue 17 item 3): 30 clients book the same slot of the same asset at
once, and exactly one wins; the rest are told who has it, nobody gets a 500. On PostgreSQL the exclusion
constraint itself refuses an overlap the service's check did not see, and that refusal reads the same."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import partial

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, Booking, BookingItem, Role, User
from app.services import bookings
from app.services.audit import verify_chain
from app.services.errors import Conflict
from tests.booking_factories import bookable_asset, make_booking, make_kit
from tests.conftest import csrf_token
from tests.factories import make_user, sign_in
from tests.permission_factories import Browser
from tests.races import race

CLIENTS = 30
THURSDAY = date(2026, 11, 26)  # the frozen clock is Wednesday 25/11/2026 09:00 UTC


def _race(targets) -> None:
    race(targets)


def _book_in_own_request(app, user_id: int, target: dict, outcomes: dict[int, str]) -> None:
    """One client: its own app context, session, connection and write transaction."""
    with app.app_context():
        try:
            with write_intent():
                person = db.session.get(User, user_id)
                try:
                    bookings.book(db.session, person, day=THURSDAY, periods=["P3", "P4"], **target)
                    db.session.commit()
                    outcomes[user_id] = "booked"
                except Conflict as error:
                    db.session.rollback()
                    outcomes[user_id] = error.message
        finally:
            db.session.remove()


@pytest.mark.parametrize("what", ["asset", "kit"])
def test_thirty_clients_booking_one_slot_at_once_make_exactly_one_booking(app, frozen_clock, what):
    office = make_user(Role.OFFICE)
    target = {"asset_id": bookable_asset(office).id} if what == "asset" else {"kit_id": make_kit(office, members=3).id}
    people = [make_user(name=f"Teacher {n:02d}") for n in range(CLIENTS)]
    ids = [person.id for person in people]  # threads must not touch the main thread's objects
    names = {person.id: person.display_name for person in people}
    db.session.rollback()
    outcomes: dict[int, str] = {}
    _race([partial(_book_in_own_request, app, user_id, target, outcomes) for user_id in ids])

    assert len(outcomes) == CLIENTS
    winners = [who for who, outcome in outcomes.items() if outcome == "booked"]
    assert len(winners) == 1, outcomes
    for loser in set(outcomes) - set(winners):
        assert f"{names[winners[0]]} has booked it" in outcomes[loser], outcomes[loser]
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BookingItem)) == (1 if what == "asset" else 3)
    created = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "booking.created"))
    assert created == 1
    assert verify_chain(db.session).ok


def _post_booking(clients: dict, who: int, camera_id: int, answers: dict) -> None:
    client, token = clients[who]
    response = client.post(
        "/api/v1/bookings",
        json={"asset_id": camera_id, "day": THURSDAY.isoformat(), "periods": ["P3"]},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    answers[who] = (response.status_code, response.get_json(silent=True) or {})


def test_clients_racing_through_the_api_get_one_201_and_409s_never_a_500(app, frozen_clock):
    n = 10
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office)
    clients = {}
    for index in range(n):
        person = make_user(name=f"Racer {index:02d}")
        client = Browser(app)
        sign_in(client, person)
        clients[person.id] = (client, csrf_token(client, "/bookings"))
    db.session.rollback()
    answers: dict = {}
    _race([partial(_post_booking, clients, who, camera.id, answers) for who in clients])
    statuses = sorted(status for status, _body in answers.values())
    assert statuses == [201] + [409] * (n - 1), answers
    problems = [body for status, body in answers.values() if status == 409]
    assert all(p["type"].endswith("conflict") and p["holder"].startswith("Racer ") for p in problems)


def test_the_database_itself_refuses_overlapping_items_on_postgresql(app, frozen_clock):
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office)
    booking = make_booking(make_user(), asset_id=camera.id, day=THURSDAY, periods=("P3",))
    overlapping = BookingItem(
        booking_id=booking.id,
        asset_id=camera.id,
        starts_at=datetime(2026, 11, 26, 11, 30, tzinfo=UTC),
        ends_at=datetime(2026, 11, 26, 12, 30, tzinfo=UTC),
        active=True,
    )
    if db.engine.dialect.name != "postgresql":
        # SQLite has no exclusion constraint: the service's check inside BEGIN IMMEDIATE is what holds there.
        names = set(db.session.scalars(sa.text("SELECT name FROM sqlite_master WHERE tbl_name = 'booking_items'")))
        assert not any("overlap" in name for name in names)
        return
    with write_intent():
        db.session.add(overlapping)
        with pytest.raises(IntegrityError, match="ex_booking_items_no_overlap"):
            db.session.flush()
        db.session.rollback()
    # An inactive item (a cancelled booking's) does not hold the slot, and back-to-back slots do not overlap.
    with write_intent():
        db.session.add(
            BookingItem(
                booking_id=booking.id,
                asset_id=camera.id,
                starts_at=overlapping.starts_at,
                ends_at=overlapping.ends_at,
                active=False,
            )
        )
        db.session.add(
            BookingItem(
                booking_id=booking.id,
                asset_id=camera.id,
                starts_at=datetime(2026, 11, 26, 12, 10, tzinfo=UTC),
                ends_at=datetime(2026, 11, 26, 13, 10, tzinfo=UTC),
                active=True,
            )
        )
        db.session.flush()
        db.session.rollback()


def test_an_overlap_the_check_missed_is_the_same_clash_on_postgresql(app, frozen_clock, monkeypatch):
    """If the check before the insert saw nothing (it cannot, with the asset locked, but the constraint is the
    last word), the constraint's refusal at the flush becomes the same Conflict, in a savepoint."""
    office = make_user(Role.OFFICE)
    camera = bookable_asset(office)
    make_booking(make_user(name="Mr B Clarke"), asset_id=camera.id, day=THURSDAY, periods=("P3",))
    real = bookings._overlapping
    calls = {"n": 0}

    def blind_first_time(busy, starts_at, ends_at):
        calls["n"] += 1
        return [] if calls["n"] == 1 else real(busy, starts_at, ends_at)

    monkeypatch.setattr(bookings, "_overlapping", blind_first_time)
    latecomer = make_user()
    with write_intent():
        if db.engine.dialect.name == "postgresql":
            with pytest.raises(bookings.BookingClash, match="Mr B Clarke has booked it"):
                bookings.book(db.session, latecomer, asset_id=camera.id, day=THURSDAY, periods=["P3"])
            # The savepoint rolled back only the insert: the transaction is still usable.
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 1
        db.session.rollback()
