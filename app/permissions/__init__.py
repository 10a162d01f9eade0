"""Classroom permission (J2, J3): areas and QR posters, asking at the door, deciding, cover, the Now board.

Where things are
- Models: ``app/models/areas.py`` (``Area``, ``AreaRule``), ``app/models/permissions.py``
  (``PermissionRequest``, ``StandingPermission``, ``standing_permission_areas``, ``RequestStatus``,
  ``RequestReason``), ``app/models/settings.py`` (``SchoolSetting``: the ``school_settings`` key/value
  table every feature's settings can use; ``ApproverStatus``: each approver's away flag).
- Services: ``app/services/areas.py``, ``app/services/permissions/`` (a package by topic), ``app/services/settings.py``.
- Pages: this package (``routes.py``, ``forms.py``, ``demo.py``); templates in ``templates/permissions/``;
  ``static/css/permissions.css``, ``static/js/permission-status.js`` (the live status page),
  ``static/js/approvals-inbox.js`` (the inbox notices new requests).
- API: ``app/api/permissions.py``.

Hooks for other features
- ``permissions.register_device_option_provider(fn)``: ``fn(session, user)`` returns ``DeviceOption``s
  for the request form (the equipment feature offers school assets on loan with ``asset_id`` and
  ``school_device=True``; keys like ``asset-5``). ``PermissionRequest.asset_id`` has no foreign key
  yet; the equipment migration adds it.
- Notifications go through ``notify(..., extra={"request_id": id, "kind": "permission.requested",
  "actions": ["approve", "deny"]})``; a push channel decides with ``permissions.decide(session,
  approver, request_id, "approve" | "deny", note=..., until=...)``.
- Timed jobs are listed in ``app/jobs.py``: ``job(session, now)``, idempotent; run every 30 s by the
  embedded thread and by ``flask permissions run-jobs`` (``app/permissions/cli.py``).

Choices
- Live status by polling the JSON API with backoff (1 s growing to 5 s while waiting, 30 s once
  approved, stopping when settled; at once when the page becomes visible). Server-sent events would
  hold a gunicorn worker thread per waiting phone; polling keeps workers free and passes any proxy.
- "End of lesson" is the next lesson end in the school-day timetable (setting
  ``permissions.lesson_ends``, default 09:50, 10:45, 12:00, 14:00, 15:15 school time); after the last
  lesson it is one hour. "Rest of the day" runs to ``permissions.day_ends`` (18:00, clubs included),
  or 23:59 once that has passed. "Until a time" is today, in school time.
- Routing: approvers on duty (not away) are told at once; if every approver is away, the delegates
  (setting ``permissions.delegate_ids``, approvers only); failing both, every approver. A request
  still pending after ``permissions.escalation_minutes`` (default 5) goes to the delegates (or, with
  none named, to every approver), once. The requester is never told of their own request.
- A standing permission with no areas covers every area whose rule allows the device; with no
  device, any of the person's devices. It approves for the time asked, cut at the end of its last day.
- Emergency override (DESIGN.md section 11): a tick box on the door page (``emergency`` and
  ``emergency_reason`` in the API), never the default, with a required reason (10 to 300 characters).
  The area's rule still applies. It is approved at once, with no decider, for the time asked cut at
  the end of the school day ("rest of the day"); it takes precedence over a standing permission, so
  the head and the DSL always hear of it. Its status stays ``approved`` (so ending, expiry and the
  Now board work unchanged) with ``emergency`` set and its own label. The approvers on duty and the
  delegates (away or not) get an EMERGENCY notice and a high-urgency push with no action buttons.
  An approver other than the requester reviews it once (``justified``, or ``not_justified`` with a
  note) from the inbox's "Emergency overrides to review" or ``/approvals/<id>``; the row is locked as
  for decisions. The timed job tells the admins and the delegates, once, about any override still
  unreviewed after 24 hours (``review_escalated_at``). The office's Now board (API) does not get
  the emergency reason.
"""
