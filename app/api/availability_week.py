"""The week at a glance over JSON (issue 17, item 5): for an asset, a kit or a kind of equipment, each
school day's lesson periods as free, partly free, booked (by whom) or on loan. The same service as the
week page (app/services/booking_week.py): three queries however many assets."""

from __future__ import annotations

from datetime import date
from typing import Literal

from flask import request
from flask_login import current_user, login_required
from pydantic import Field

from app.api import bp
from app.api.openapi import json_content, register_paths
from app.api.shapes import Shape, reply
from app.extensions import db
from app.models import AssetKind
from app.services import booking_week
from app.services.errors import ValidationFailed


class PeriodTimes(Shape):
    label: str
    starts: str = Field(description="HH:MM school time")
    ends: str = Field(description="HH:MM school time")


class WeekSlot(Shape):
    period: str
    state: Literal["free", "partly", "booked", "on_loan", "holiday"]
    text: str = Field(description='what the week page says, like "Booked by Mr B Clarke" or "3 of 40 free"')
    free: bool = Field(description="at least one of the assets is free for the whole period")


class WeekDay(Shape):
    date: date
    slots: list[WeekSlot]


class AvailabilityWeek(Shape):
    scope: Literal["asset", "kit", "kind"]
    title: str
    week: str = Field(description="ISO week, like 2026-W49")
    monday: date
    asset_count: int
    periods: list[PeriodTimes]
    days: list[WeekDay]


def _one_id(name: str) -> int | None:
    value = request.args.get(name, type=int)
    if name in request.args and (value is None or not 1 <= value <= 2_147_483_647):
        raise ValidationFailed("Give a whole number id.", {name: ["Give a whole number id."]})
    return value


@bp.get("/availability/week")
@login_required
def availability_week():
    asset_id, kit_id, kind = _one_id("asset_id"), _one_id("kit_id"), request.args.get("kind", "")[:40] or None
    chosen = [name for name, value in (("asset_id", asset_id), ("kit_id", kit_id), ("kind", kind)) if value is not None]
    if len(chosen) != 1:
        raise ValidationFailed(
            "Give exactly one of asset_id, kit_id or kind.", {"asset_id": ["Give exactly one of asset_id, kit_id or kind."]}
        )
    monday = booking_week.parse_week(request.args.get("week", "")[:20])
    if asset_id is not None:
        view = booking_week.asset_week(db.session, current_user, asset_id, monday)
    elif kit_id is not None:
        view = booking_week.kit_week(db.session, current_user, kit_id, monday)
    else:
        view = booking_week.kind_week(db.session, current_user, kind or "", monday)
    return reply(AvailabilityWeek.model_validate(booking_week.week_json(view)))


_problem = {"$ref": "#/components/responses/Problem"}
_id_schema = {"type": "integer", "minimum": 1, "maximum": 2_147_483_647}

register_paths(
    {
        "/availability/week": {
            "get": {
                "summary": "A school week (Monday to Friday) by lesson period: free, booked (by whom) or on loan, "
                "for one asset, one kit (free where every member is) or a kind of bookable equipment",
                "operationId": "getAvailabilityWeek",
                "parameters": [
                    {
                        "name": "asset_id",
                        "in": "query",
                        "description": "give one of asset_id, kit_id, kind",
                        "schema": _id_schema,
                    },
                    {"name": "kit_id", "in": "query", "schema": _id_schema},
                    {"name": "kind", "in": "query", "schema": {"type": "string", "enum": [k.value for k in AssetKind]}},
                    {
                        "name": "week",
                        "in": "query",
                        "description": "ISO week like 2026-W49 (default: this week; next week at the weekend)",
                        "schema": {"type": "string", "pattern": r"^\d{4}-W\d{2}$"},
                    },
                ],
                "responses": {
                    "200": json_content(AvailabilityWeek, "The week"),
                    "401": _problem,
                    "404": _problem,
                    "422": _problem,
                },
            },
        },
    }
)
