"""Approve and Deny from a push notification decide permission requests through the permissions service.

The token has already proved who is deciding and that this button is unspent; the permissions service
applies its own rules exactly as for a tap in the approvals inbox (approvers only, never one's own
request, one decision per request: a second approver is told who decided first).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.clock import format_time
from app.services import permissions
from app.services.action_tokens import register_action_handler, register_subject_lock


def decide_from_notification(session: Session, approver, request_id: int, action: str) -> dict:
    """Decide the request as ``approver``; the message is what the confirming notification says."""
    request = permissions.decide(session, approver, request_id, action)
    if action == "approve":
        return {"message": f"Approved until {format_time(request.approved_until)}"}
    return {"message": "Denied"}


register_action_handler("permission_request", decide_from_notification)
# The request row is locked before the token is spent and the press audited: the inbox and the API lock
# it first too, so a press racing a tap cannot deadlock.
register_subject_lock("permission_request", permissions.lock_request)
