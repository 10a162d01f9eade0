"""Deciding: approve or refuse, review an emergency, withdraw, end. One decision per request (row lock)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import format_time, utcnow
from app.models import (
    PermissionRequest,
    RequestStatus,
    ReviewOutcome,
    Role,
    User,
)
from app.services.audit import record_audit_event
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.services.notifications import notify
from app.services.permissions.common import MAX_NOTE, REVIEW_WITHIN, name_of
from app.services.permissions.options import request_links
from app.services.permissions.places import end_other_places
from app.services.permissions.queries import LIST_OPTIONS, own_request

# Deciding -------------------------------------------------------------------------------------------


def lock_request(session: Session, request_id: int) -> bool:
    """Lock a request's bare row for this transaction; False when there is no such request.

    Take it before anything else the transaction locks, the audit append above all (the lock order in
    CONTRIBUTING.md, Transactions). SQLite's BEGIN IMMEDIATE already holds the only write lock.
    """
    return session.scalar(sa.select(PermissionRequest.id).where(PermissionRequest.id == request_id).with_for_update()) is not None


def _locked(session: Session, request_id: int) -> PermissionRequest:
    """The request, locked for this transaction and then re-read (PostgreSQL row lock; SQLite holds BEGIN IMMEDIATE).

    The lock is taken on the bare row first: PostgreSQL re-checks a locked row that changed while it
    waited, but not the rows joined to it, so a joined load in the same statement could see the new
    ``decided_by_id`` with the old (empty) ``decided_by``. The fresh read after the lock sees both.
    """
    if not lock_request(session, request_id):
        raise NotFound("There is no such request.")
    # LIST_OPTIONS: the joined people come without their roles and the standing permission is not joined;
    # the model's default graph would add select-ins of roles for every person on it (issue 13).
    request = session.get(PermissionRequest, request_id, populate_existing=True, options=LIST_OPTIONS)
    assert request is not None  # locked above
    return request


def already_settled(request: PermissionRequest) -> str:
    """Why a request can no longer be decided, naming who decided it."""
    when = format_time(request.decided_at)
    status = request.status
    if status == RequestStatus.APPROVED.value and request.emergency:
        return f"{request.requester.display_name} used an emergency override at {when}: it needs a review, not a decision."
    if status == RequestStatus.APPROVED.value and request.standing_permission_id:
        return "This request was approved at once by a standing permission."
    if status == RequestStatus.APPROVED.value:
        return f"{name_of(request.decided_by)} already approved this at {when}."
    if status == RequestStatus.DENIED.value:
        return f"{name_of(request.decided_by)} already denied this at {when}."
    if status == RequestStatus.WITHDRAWN.value:
        return f"{request.requester.display_name} withdrew this request."
    if status == RequestStatus.EXPIRED.value:
        return "This request has expired."
    if status == RequestStatus.ENDED.value:
        return "This permission has already ended."
    return "This request has already been decided."


def decide(
    session: Session,
    actor: User,
    request_id: int,
    decision: str,
    *,
    note: str = "",
    until: datetime | None = None,
) -> PermissionRequest:
    """Approve or deny a pending request, once. ``until`` (approve only) may shorten the permission.

    Raises Forbidden for non-approvers and for the requester, Conflict (naming who decided) when the
    request is no longer pending, ValidationFailed for a bad decision, note or time.
    """
    if not actor.has_role(Role.APPROVER) or not actor.is_active_account:
        raise Forbidden("Only approvers decide requests.")
    if decision not in ("approve", "deny"):
        raise ValidationFailed("Choose approve or deny.", {"decision": ["Must be approve or deny."]})
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationFailed("The note is too long.", {"note": [f"Use at most {MAX_NOTE} characters."]})
    request = _locked(session, request_id)
    if request.requester_id == actor.id:
        raise Forbidden("You cannot decide your own request; another approver will.")
    if request.status != RequestStatus.PENDING.value:
        raise Conflict(already_settled(request))
    now = utcnow()
    if request.wanted_until <= now:
        raise Conflict(f"This request ran out at {format_time(request.wanted_until)} before anyone decided.")
    if until is not None and decision == "approve":
        if until <= now:
            raise ValidationFailed("That time has passed.", {"until": ["That time has already passed; choose a later time."]})
        if until > request.wanted_until:
            raise ValidationFailed(
                "You can only shorten it.",
                {"until": [f"They asked until {format_time(request.wanted_until)}; choose that or earlier."]},
            )
    request.decided_by_id = actor.id
    request.decided_at = now
    request.decision_note = note
    details: dict = {"area_id": request.area_id, "note_given": bool(note)}
    if decision == "approve":
        request.status = RequestStatus.APPROVED.value
        request.approved_until = until or request.wanted_until
        details["approved_until"] = request.approved_until.isoformat()
        details["shortened"] = request.approved_until < request.wanted_until
        title = f"Approved: {request.device_label} in {request.area.name} until {format_time(request.approved_until)}"
        body = f"By {actor.display_name}." + (f" Note: {note}" if note else "")
    else:
        request.status = RequestStatus.DENIED.value
        title = f"Denied: {request.device_label} in {request.area.name}"
        body = f"By {actor.display_name}." + (f" Note: {note}" if note else "")
    session.flush()
    session.expire(request, ["decided_by"])
    record_audit_event(
        session, actor, f"permission.{request.status}", "permission_request", request.id, details, related=request_links(request)
    )
    if request.status == RequestStatus.APPROVED.value:
        end_other_places(session, actor, request, now)
    notify(
        session,
        [request.requester],
        kind=f"permission.{request.status}",
        title=title,
        body=body,
        url=f"/requests/{request.id}",
        extra={"request_id": request.id, "kind": f"permission.{request.status}"},
    )
    return request


def already_reviewed(request: PermissionRequest) -> str:
    """Who reviewed an emergency override, when, and what they found."""
    return (
        f"{name_of(request.reviewed_by)} already reviewed this at {format_time(request.reviewed_at)}: "
        f"{ReviewOutcome(request.review_outcome or '').label}."
    )


def review_emergency(session: Session, actor: User, request_id: int, outcome: str, *, note: str = "") -> PermissionRequest:
    """Record an approver's review of an emergency override: justified or not (with a note), exactly once.

    Raises Forbidden for non-approvers and for the requester, Conflict (naming who reviewed) when it is
    already reviewed or was no emergency, ValidationFailed for a bad outcome or note.
    """
    if not actor.has_role(Role.APPROVER) or not actor.is_active_account:
        raise Forbidden("Only approvers review emergency overrides.")
    errors: dict[str, list[str]] = {}
    if outcome not in {o.value for o in ReviewOutcome}:
        errors["outcome"] = ["Choose justified or not justified."]
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        errors["note"] = [f"Use at most {MAX_NOTE} characters."]
    elif outcome == ReviewOutcome.NOT_JUSTIFIED.value and not note:
        errors["note"] = ["Say why it was not justified, and what happens next."]
    if errors:
        raise ValidationFailed("Some details need correcting.", errors)
    request = _locked(session, request_id)
    if not request.emergency:
        raise Conflict("This was not an emergency override: there is nothing to review.")
    if request.requester_id == actor.id:
        raise Forbidden("You cannot review your own emergency override; another approver will.")
    if request.reviewed_at is not None:
        raise Conflict(already_reviewed(request))
    now = utcnow()
    request.reviewed_by_id = actor.id
    request.reviewed_at = now
    request.review_outcome = outcome
    request.review_note = note
    session.flush()
    session.expire(request, ["reviewed_by"])
    record_audit_event(
        session,
        actor,
        "permission.emergency_reviewed",
        "permission_request",
        request.id,
        {
            "area_id": request.area_id,
            "outcome": outcome,
            "note": note[:MAX_NOTE],
            "hours_after": round((now - request.created_at).total_seconds() / 3600, 1),
            "late": now - request.created_at > REVIEW_WITHIN,
        },
        related=request_links(request),
    )
    notify(
        session,
        [request.requester],
        kind="permission.emergency_reviewed",
        title=f"Your emergency override in {request.area.name} was reviewed: {ReviewOutcome(outcome).label}",
        body=f"By {actor.display_name}." + (f" Note: {note}" if note else ""),
        url=f"/requests/{request.id}",
        extra={"request_id": request.id, "kind": "permission.emergency_reviewed"},
    )
    return request


def withdraw(session: Session, actor: User, request_id: int) -> PermissionRequest:
    """The requester takes back a request nobody has decided yet."""
    own_request(session, actor, request_id)
    request = _locked(session, request_id)
    if request.status != RequestStatus.PENDING.value:
        raise Conflict(already_settled(request))
    request.status = RequestStatus.WITHDRAWN.value
    request.ended_at = utcnow()
    session.flush()
    record_audit_event(
        session,
        actor,
        "permission.withdrawn",
        "permission_request",
        request.id,
        {"area_id": request.area_id},
        related=request_links(request),
    )
    return request


def end_permission(session: Session, actor: User, request_id: int) -> PermissionRequest:
    """ "I've left the room": the requester ends an approved permission early."""
    own_request(session, actor, request_id)
    request = _locked(session, request_id)
    if request.status == RequestStatus.PENDING.value:
        raise Conflict("This has not been approved yet; withdraw it instead.")
    if request.status != RequestStatus.APPROVED.value:
        raise Conflict(already_settled(request))
    request.status = RequestStatus.ENDED.value
    request.ended_at = utcnow()
    session.flush()
    record_audit_event(
        session,
        actor,
        "permission.ended",
        "permission_request",
        request.id,
        {"area_id": request.area_id, "early": True},
        related=request_links(request),
    )
    return request
