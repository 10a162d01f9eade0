"""Cheap checks before a locked read-decide-write (issue 13).

An approver may see every request, so before a decision or review the route only needs to know the
request exists (a 404 before the body is read, as before); the service then loads and locks the request
once. Loading the whole ``PermissionRequest`` graph here as well doubled the decision POST's work.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.models import PermissionRequest
from app.services.errors import NotFound


def require_request_exists(session, request_id: int) -> None:
    """NotFound unless the request exists (one indexed id lookup, nothing joined)."""
    if session.scalar(sa.select(PermissionRequest.id).where(PermissionRequest.id == request_id)) is None:
        raise NotFound("There is no such request.")
