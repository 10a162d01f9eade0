"""Permission to take a device into a pupil area (J2, J3): asking, deciding, cover, expiry and escalation.

Rules kept here, whatever the caller (page, API, scheduler, push action):
- the area's rule first: ``closed`` refuses every device, ``school-devices-only`` refuses personal ones;
- a standing permission that covers the request approves it at once;
- exactly one decision per request: the row is locked (``with_for_update``; SQLite's BEGIN IMMEDIATE)
  and its status checked, and the loser gets ``Conflict`` naming who decided; every path that changes
  a request (inbox, API, a notification's button, review, withdraw, end, the timed jobs) locks its row
  before it appends to the audit log, never after (CONTRIBUTING.md, Transactions);
- nobody decides their own request;
- new requests go to approvers on duty (not away); if every approver is away, to the delegates; a
  request still pending after the escalation minutes is sent to the delegates too;
- an emergency override (a reason is required) is approved at once, capped at the end of the school
  day, without skipping the area's rule; the approvers on duty and the delegates (the DSL) are told at
  once; an approver other than the requester reviews it, once; unreviewed after 24 hours, the admins
  and the delegates are told, once.

The package is split by topic (``common``, ``options``, ``times``, ``routing``, ``asking``, ``places``, ``deciding``, ``jobs``, ``standing``, ``queries``);
callers import its public names from here.
"""

from __future__ import annotations

from app.services.permissions.asking import (
    covering_standing_permission,
    emergency_recipients,
    request_permission,
    review_overdue_recipients,
    school_day_end,
)
from app.services.permissions.common import (
    DAY_ENDS,
    DELEGATE_IDS,
    ESCALATION_MINUTES,
    LESSON_ENDS,
    MAX_EMERGENCY_REASON,
    MAX_NOTE,
    MAX_OTHER_REASON,
    MIN_EMERGENCY_REASON,
    REVIEW_WITHIN,
    AlreadyAsked,
    AreaRuleRefusal,
    Duration,
)
from app.services.permissions.deciding import (
    already_reviewed,
    already_settled,
    decide,
    end_permission,
    lock_request,
    review_emergency,
    withdraw,
)
from app.services.permissions.jobs import (
    JobReport,
    escalate_due,
    escalate_unreviewed,
    expire_due,
    run_jobs,
)
from app.services.permissions.options import (
    DeviceOption,
    DeviceOptionProvider,
    device_options,
    personal_device_options,
    register_device_option_provider,
    request_links,
)
from app.services.permissions.places import (
    end_other_places,
    moved_from,
    refuse_second_wait,
)
from app.services.permissions.queries import (
    active_permissions,
    describe_status,
    emergencies_to_review,
    own_request,
    pending_requests,
    personal_data_section,
    requests_of,
    visible_request,
)
from app.services.permissions.routing import (
    approvers_on_duty,
    delegates,
    escalation_minutes,
    escalation_recipients,
    is_away,
    new_request_recipients,
    set_away,
    set_delegates,
    set_escalation_minutes,
)
from app.services.permissions.standing import (
    end_standing_permission,
    grant_standing_permission,
    grantable_devices,
    standing_permissions,
    standing_permissions_of,
)
from app.services.permissions.times import (
    end_time_for,
    parse_until,
)

__all__ = [
    "DAY_ENDS",
    "DELEGATE_IDS",
    "ESCALATION_MINUTES",
    "LESSON_ENDS",
    "MAX_EMERGENCY_REASON",
    "MAX_NOTE",
    "MAX_OTHER_REASON",
    "MIN_EMERGENCY_REASON",
    "REVIEW_WITHIN",
    "AlreadyAsked",
    "AreaRuleRefusal",
    "DeviceOption",
    "DeviceOptionProvider",
    "Duration",
    "JobReport",
    "active_permissions",
    "already_reviewed",
    "already_settled",
    "approvers_on_duty",
    "covering_standing_permission",
    "decide",
    "delegates",
    "describe_status",
    "device_options",
    "emergencies_to_review",
    "emergency_recipients",
    "end_other_places",
    "end_permission",
    "end_standing_permission",
    "end_time_for",
    "escalate_due",
    "escalate_unreviewed",
    "escalation_minutes",
    "escalation_recipients",
    "expire_due",
    "grant_standing_permission",
    "grantable_devices",
    "is_away",
    "lock_request",
    "moved_from",
    "new_request_recipients",
    "own_request",
    "parse_until",
    "pending_requests",
    "personal_data_section",
    "personal_device_options",
    "refuse_second_wait",
    "register_device_option_provider",
    "request_links",
    "request_permission",
    "requests_of",
    "review_emergency",
    "review_overdue_recipients",
    "run_jobs",
    "school_day_end",
    "set_away",
    "set_delegates",
    "set_escalation_minutes",
    "standing_permissions",
    "standing_permissions_of",
    "visible_request",
    "withdraw",
]
