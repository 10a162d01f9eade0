"""Recording reads of personal data (an IMEI revealed, a register search, an export) in the audit log.

A page or export answered to a GET runs in a read transaction; on SQLite an audit append needs the
write lock (BEGIN IMMEDIATE). So a read is recorded in a short write transaction of its own, committed
before the data is sent: if it cannot be recorded, nothing is shown. A POST already holds the lock and
the event joins its transaction (the route commits).
"""

from __future__ import annotations

from flask_login import current_user

from app.database import wants_write_lock, write_intent
from app.extensions import db
from app.services.audit import record_audit_event


def search_details(text: str) -> dict:
    """What a register search looked for, for the audit log: an IMEI search keeps only how many digits."""
    compact = text.replace(" ", "").replace("-", "")
    if compact.isdigit():
        return {"by": "imei", "digits": len(compact)}
    return {"by": "name", "text": text.strip()}


def record_read(
    action: str, subject_type: str = "", subject_id: object = "", details: dict | None = None, related: dict | None = None
) -> None:
    """Append ``action`` for the signed-in person and commit it now (never the IMEI itself)."""
    if wants_write_lock():
        record_audit_event(db.session, current_user, action, subject_type, subject_id, details, related=related)
        db.session.commit()
        return
    db.session.rollback()  # end the read transaction: the event's own starts with the write lock
    with write_intent():
        record_audit_event(db.session, current_user, action, subject_type, subject_id, details, related=related)
        db.session.commit()
