"""Equipment bookings over JSON (issue 17): bookings (book, read, cancel), the kits one may book, and when
an asset or a kit is taken. The same services as the pages; refusals are problem details."""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Literal

from flask import request
from flask_login import current_user, login_required
from pydantic import Field, Strict

from app.api import bp
from app.api.openapi import json_content, register_paths, request_body
from app.api.shapes import (
    Body,
    Day,
    Message,
    OptionalId,
    OptionalTimestamp,
    PersonRef,
    Refusal,
    Shape,
    Text,
    Timestamp,
    read_body,
    reply,
    school_date,
    text,
)
from app.clock import local_today
from app.extensions import db
from app.models import Booking as BookingModel
from app.models import BookingStatus
from app.models import Kit as KitModel
from app.services import bookings
from app.services.errors import ValidationFailed

_DAY_EXAMPLE = "2026-12-08"
_HH_MM = r"^(|([01][0-9]|2[0-3]):[0-5][0-9])$"
_TIME_REFUSAL = Refusal("Use a time like 11:10, or leave it empty.")
PeriodLabel = Annotated[str, Strict(), Field(min_length=1, max_length=12), Message("Each period is a name like P3.")]


class BookingInput(Body):
    """A booking of one asset or one kit: for a day's lesson periods, or from ``starts`` until ``ends``."""

    asset_id: OptionalId = None
    kit_id: OptionalId = None
    for_user_id: OptionalId = Field(None, description="the office may book for someone else; otherwise left out")
    day: Annotated[date, *school_date(_DAY_EXAMPLE)]
    periods: Annotated[list[PeriodLabel], Field(max_length=16), Message('Must be a list of period names, like ["P3", "P4"].')] = (
        Field(default_factory=list, description="neighbouring lesson periods (setting bookings.periods); or give starts and ends")
    )
    starts: Annotated[Text, _TIME_REFUSAL] = text("", pattern=_HH_MM, description="HH:MM school time")
    ends: Annotated[Text, _TIME_REFUSAL] = text("", pattern=_HH_MM, description="HH:MM school time")
    until_day: Annotated[date, *school_date(_DAY_EXAMPLE)] | None = Field(
        None, description="a time range's last day (at most 5 school days); the first day when left out"
    )
    purpose: Text = text("", max_length=200)


class Booking(Shape):
    id: int
    asset_id: int | None
    kit_id: int | None
    what: str
    booked_for: PersonRef
    booked_by: PersonRef
    starts_at: Timestamp
    ends_at: Timestamp
    periods: str | None = Field(description='like "P3-P4"; null for a time range')
    purpose: str
    status: BookingStatus
    cancelled_at: OptionalTimestamp
    created_at: Timestamp

    @classmethod
    def of(cls, booking: BookingModel) -> Booking:
        return cls(
            id=booking.id,
            asset_id=booking.asset_id,
            kit_id=booking.kit_id,
            what=booking.thing_name,
            booked_for=PersonRef.of(booking.booked_for),
            booked_by=PersonRef.of(booking.booked_by),
            starts_at=booking.starts_at,
            ends_at=booking.ends_at,
            periods=booking.periods,
            purpose=booking.purpose,
            status=booking.status,
            cancelled_at=booking.cancelled_at,
            created_at=booking.created_at,
        )


class BookingList(Shape):
    items: list[Booking]


class KitMemberRef(Shape):
    id: int
    tag: str
    name: str


class Kit(Shape):
    id: int
    name: str
    tag: str
    description: str
    bookable_by: str | None
    members: list[KitMemberRef]

    @classmethod
    def of(cls, kit: KitModel) -> Kit:
        return cls(
            id=kit.id,
            name=kit.name,
            tag=kit.tag,
            description=kit.description,
            bookable_by=kit.bookable_by,
            members=[KitMemberRef(id=m.asset.id, tag=m.asset.tag, name=m.asset.name) for m in kit.members],
        )


class KitList(Shape):
    items: list[Kit]


class BusyTime(Shape):
    starts_at: Timestamp
    ends_at: Timestamp
    kind: Literal["booked", "on_loan"]
    who: str = Field(description="who booked it, or who has it on loan (name only)")
    booking_id: int | None
    asset_id: int


class Availability(Shape):
    start: Day
    end: Day
    busy: list[BusyTime]


def _time(value: str) -> time | None:
    return time.fromisoformat(value) if value else None


@bp.get("/bookings")
@login_required
def list_bookings():
    """Your bookings still to come; the office may ask for every booking of a day (``day``)."""
    day = request.args.get("day")
    if day:
        found = bookings.bookings_on_day(db.session, current_user, date.fromisoformat(day))
    else:
        found = bookings.my_bookings(db.session, current_user, upcoming_only=request.args.get("past") != "true")
    return reply(BookingList(items=[Booking.of(b) for b in found]))


@bp.post("/bookings")
@login_required
def create_booking():
    body = read_body(BookingInput)
    booking = bookings.book(
        db.session,
        current_user,
        asset_id=body.asset_id,
        kit_id=body.kit_id,
        for_user_id=body.for_user_id,
        day=body.day,
        periods=body.periods,
        starts=_time(body.starts),
        ends=_time(body.ends),
        until_day=body.until_day,
        purpose=body.purpose,
    )
    db.session.commit()
    return reply(Booking.of(booking), 201)


@bp.get("/bookings/<int:booking_id>")
@login_required
def get_booking(booking_id: int):
    return reply(Booking.of(bookings.get_booking(db.session, current_user, booking_id)))


@bp.post("/bookings/<int:booking_id>/cancel")
@login_required
def cancel_booking(booking_id: int):
    booking = bookings.cancel_booking(db.session, current_user, booking_id)
    db.session.commit()
    return reply(Booking.of(booking))


@bp.get("/kits")
@login_required
def list_kits():
    """The kits you may book (the office: every kit in use)."""
    found = (
        bookings.list_kits(db.session) if bookings.is_office(current_user) else bookings.bookable_kits(db.session, current_user)
    )
    return reply(KitList(items=[Kit.of(k) for k in found]))


@bp.get("/availability")
@login_required
def availability():
    start_text, end_text = request.args.get("from"), request.args.get("to")
    start = date.fromisoformat(start_text) if start_text else local_today()
    end = date.fromisoformat(end_text) if end_text else start
    asset_id, kit_id = request.args.get("asset_id", type=int), request.args.get("kit_id", type=int)
    if asset_id is None and kit_id is None:
        raise ValidationFailed("Give asset_id or kit_id.", {"asset_id": ["Give asset_id or kit_id."]})
    busy = bookings.availability(db.session, current_user, asset_id=asset_id, kit_id=kit_id, start=start, end=end)
    return reply(
        Availability(
            start=start,
            end=end,
            busy=[
                BusyTime(
                    starts_at=b.starts_at,
                    ends_at=b.ends_at,
                    kind="booked" if b.kind == "booked" else "on_loan",
                    who=b.who,
                    booking_id=b.booking_id,
                    asset_id=b.asset_id,
                )
                for b in busy
            ],
        )
    )


# OpenAPI -------------------------------------------------------------------------------------------

_problem = {"$ref": "#/components/responses/Problem"}
_signed_in = {"401": _problem}
_id_schema = {"type": "integer", "minimum": 1, "maximum": 2_147_483_647}


def _path_param(name: str) -> list[dict]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}]


register_paths(
    {
        "/bookings": {
            "get": {
                "summary": "Your bookings still to come, soonest first; the office may list a day's bookings (day)",
                "operationId": "listBookings",
                "parameters": [
                    {
                        "name": "day",
                        "in": "query",
                        "description": "office and admins: every booking touching this school day",
                        "schema": {"type": "string", "format": "date"},
                    },
                    {
                        "name": "past",
                        "in": "query",
                        "description": "true: all your bookings, newest first",
                        "schema": {"type": "string", "enum": ["true", "false"]},
                    },
                ],
                "responses": {"200": json_content(BookingList, "Bookings"), "403": _problem, "422": _problem, **_signed_in},
            },
            "post": {
                "summary": "Book an asset or a kit (every member) for lesson periods or a time range; "
                "409 names who has it and the next free slot",
                "operationId": "createBooking",
                "requestBody": request_body(BookingInput),
                "responses": {
                    "201": json_content(Booking, "The booking"),
                    "403": _problem,
                    "404": _problem,
                    "409": _problem,
                    "422": _problem,
                    **_signed_in,
                },
            },
        },
        "/bookings/{booking_id}": {
            "get": {
                "summary": "One booking (the person it is for, who made it, or the office)",
                "operationId": "getBooking",
                "parameters": _path_param("booking_id"),
                "responses": {"200": json_content(Booking, "The booking"), "404": _problem, **_signed_in},
            },
        },
        "/bookings/{booking_id}/cancel": {
            "post": {
                "summary": "Cancel a booking (the person it is for, who made it, or the office); 409 once it is not booked",
                "operationId": "cancelBooking",
                "parameters": _path_param("booking_id"),
                "responses": {
                    "200": json_content(Booking, "The cancelled booking"),
                    "404": _problem,
                    "409": _problem,
                    **_signed_in,
                },
            },
        },
        "/kits": {
            "get": {
                "summary": "Kits you may book, with what is in each (the office: every kit in use)",
                "operationId": "listKits",
                "responses": {"200": json_content(KitList, "Kits"), **_signed_in},
            },
        },
        "/availability": {
            "get": {
                "summary": "When an asset or a kit (any member) is booked or on loan, between two school dates",
                "operationId": "getAvailability",
                "parameters": [
                    {"name": "asset_id", "in": "query", "schema": _id_schema},
                    {"name": "kit_id", "in": "query", "schema": _id_schema},
                    {
                        "name": "from",
                        "in": "query",
                        "description": "first school date (default today)",
                        "schema": {"type": "string", "format": "date"},
                    },
                    {
                        "name": "to",
                        "in": "query",
                        "description": "last school date, at most 62 days on",
                        "schema": {"type": "string", "format": "date"},
                    },
                ],
                "responses": {"200": json_content(Availability, "Busy times"), "404": _problem, "422": _problem, **_signed_in},
            },
        },
    }
)
