"""Errors the domain raises; the web and API layers turn them into messages and problem details."""

from __future__ import annotations


class DomainError(Exception):
    """A rule refused the change. ``field_errors`` maps form fields to messages."""

    status = 400
    slug = "invalid-request"
    title = "The request could not be carried out"
    # True when the refusal itself must be kept (e.g. the audited attempt), so the caller commits.
    keep_changes = False

    def __init__(self, message: str, field_errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field_errors = field_errors or {}


class ValidationFailed(DomainError):
    status = 422
    slug = "validation-failed"
    title = "Some details need correcting"


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"
    title = "Not allowed"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "Already changed"


class DuplicateImei(ValidationFailed):
    """Refused without naming the owner; the audited attempt is committed."""

    keep_changes = True


class AlreadyRegistered(Conflict):
    """The person registered this device already (a double tap): nobody is alerted; show them their device."""

    title = "Already registered"

    def __init__(self, message: str, device_id: int) -> None:
        super().__init__(message)
        self.device_id = device_id
        self.problem_extra = {"device_id": device_id}


class MalformedRequest(DomainError):
    """The request itself is not in the described form (e.g. a query parameter outside its enum)."""

    status = 400
    slug = "malformed-request"
    title = "The request is malformed"
