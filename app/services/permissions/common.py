"""Permission settings, limits, durations and the refusals every part raises."""

from __future__ import annotations

import enum
import re
from datetime import timedelta
from typing import cast

from app.clock import format_time
from app.models import (
    PermissionRequest,
    User,
)
from app.services.errors import ValidationFailed
from app.services.settings import define_setting

ESCALATION_MINUTES = define_setting(
    "permissions.escalation_minutes", 5, "Minutes before an undecided request goes to the delegates"
)
DELEGATE_IDS = define_setting(
    "permissions.delegate_ids", cast("list[int]", []), "Delegates: approvers who cover when others are away"
)
# When lessons end, in school time: "end of lesson" is the next of these. A typical primary day.
LESSON_ENDS = define_setting(
    "permissions.lesson_ends", ["09:50", "10:45", "12:00", "14:00", "15:15"], "When lessons end (HH:MM, school time)"
)
# "Rest of the day" runs until here (after-school clubs included).
DAY_ENDS = define_setting("permissions.day_ends", "18:00", "When the school day ends for 'rest of the day' (HH:MM)")

MAX_NOTE = 300
MAX_OTHER_REASON = 200
MAX_EMERGENCY_REASON = 300
MIN_EMERGENCY_REASON = 10  # "a sentence": enough that the head and the DSL know what is happening
REVIEW_WITHIN = timedelta(hours=24)
_HH_MM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class Duration(enum.StrEnum):
    END_OF_LESSON = "end_of_lesson"
    ONE_HOUR = "one_hour"
    REST_OF_DAY = "rest_of_day"
    UNTIL = "until"

    @property
    def label(self) -> str:
        return {
            "end_of_lesson": "Until the end of this lesson",
            "one_hour": "For 1 hour",
            "rest_of_day": "For the rest of the day",
            "until": "Until a time I choose",
        }[self.value]


class AreaRuleRefusal(ValidationFailed):
    """The area's rule refuses this device; the refused attempt is audited and kept."""

    keep_changes = True
    title = "Not allowed in this area"


class AlreadyAsked(ValidationFailed):
    """The same person is already waiting for a decision on the same device in the same area."""

    status = 409
    slug = "already-asked"
    title = "Already asked"

    def __init__(self, first: PermissionRequest) -> None:
        message = (
            f"You already asked to take {first.device_label} into {first.area.name} at {format_time(first.created_at)} "
            "and are waiting for a decision. Follow that request instead of asking again."
        )
        super().__init__(message, {"device": [message]})
        self.request_id = first.id
        self.request_url = f"/requests/{first.id}"
        self.problem_extra = {"request_id": first.id, "request_url": self.request_url}


def name_of(user: User | None) -> str:
    """A person's name as colleagues know it ("Someone" for a person no longer on record)."""
    return user.display_name if user is not None else "Someone"
