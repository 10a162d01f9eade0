"""The web side of one-time form keys (see app/services/form_keys.py).

- ``new_form_key()`` (a template global) draws a fresh key for the hidden ``form_key`` input beside the
  CSRF token of every form that changes something: a form drawn again with errors gets a new key.
- Before the view, a key posted with a page form is inserted into the view's transaction (the write
  transaction ``app.web.begin_request_write`` opened just before); the view's own commit keeps it. A
  key already taken answers with the first result (303 to where the first answer went) and the view
  never runs.
- After the view, the first result is recorded (or, for an answer that is not a success, the key freed)
  in a short write transaction of its own.

Posts without a key (the JSON API, an old cached page) work as before.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

import sqlalchemy.orm as so
from flask import Flask, current_app, flash, g, redirect, request
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from app.database import begin_write, reset_write_intent, set_write_intent
from app.extensions import db
from app.services import form_keys

log = logging.getLogger(__name__)

FIELD = "form_key"
FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}
# How long a replay waits for the first request to record where it sent the browser.
REPLAY_WAIT_SECONDS = 5.0
ALREADY_DONE = "That was sent twice; it was done once."


def _user_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None


def new_form_key() -> str:
    """A one-time key for the form being drawn (autoescaped into its hidden ``form_key`` input)."""
    return form_keys.new_key(current_app.config["SECRET_KEY"], _user_id())


def _posted_key() -> str | None:
    if request.method in ("GET", "HEAD", "OPTIONS") or request.path.startswith("/api/"):
        return None
    if request.mimetype not in FORM_TYPES:
        return None
    return request.form.get(FIELD) or None


def _claim_form_key():
    key = _posted_key()
    if key is None:
        return None
    user_id = _user_id()
    token = form_keys.verified_token(current_app.config["SECRET_KEY"], key, user_id)
    if token is None:
        return None  # another person's key or a made-up one: ignored, never answered with someone's result
    for attempt in range(3):
        if attempt:
            begin_write(db.session)  # waiting for the first result ended the write transaction
        row = form_keys.claim(db.session, token, user_id, request.endpoint or "")
        if row is not None:
            g.form_key = token
            db.session.info["form_key_row"] = row
            return None
        first = _wait_for_first_result(token)
        if first is not None:
            return _replay(first, user_id)
        # The first request let the key go (it was refused): this one acts as a first submission.
    begin_write(db.session)
    return None


def _wait_for_first_result(token: str):
    """The committed key row once its result is recorded (or the wait runs out); None if the key was freed."""
    db.session.rollback()  # leave the write lock (SQLite) so the first request can record its result
    write_token = set_write_intent(False)
    try:
        deadline = time.monotonic() + REPLAY_WAIT_SECONDS
        while True:
            row = form_keys.first_result(db.session, token)
            db.session.rollback()
            if row is None or row.status is not None or time.monotonic() >= deadline:
                return row
            time.sleep(0.05)
    finally:
        reset_write_intent(write_token)


def _replay(first, user_id: int | None):
    if first.user_id != user_id:
        return None
    flash(ALREADY_DONE, "info")
    return redirect(first.location or _fallback_location(), 303)


def _fallback_location() -> str:
    """Where to send a replay whose first answer was not a redirect: this address if it has a page, else home."""
    adapter = current_app.url_map.bind(request.host, url_scheme=request.scheme)
    try:
        adapter.match(request.path, method="GET")
    except HTTPException:
        return "/"
    return request.path


def _local(location: str | None) -> str | None:
    if not location:
        return None
    parts = urlsplit(location)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _record_first_result(response):
    token = g.pop("form_key", None)
    if token is None or db.session.info.pop("form_key_committed", None) != token:
        return response  # no key, or the view did not commit: the teardown's rollback frees the key
    try:
        begin_write(db.session)  # the view's transaction is over; whatever it drew was read outside the lock
        if 300 <= response.status_code < 400:
            form_keys.record_result(db.session, token, response.status_code, _local(response.location) or _fallback_location())
        elif response.status_code < 400:
            form_keys.record_result(db.session, token, response.status_code, _fallback_location())
        else:
            form_keys.release(db.session, token)
        db.session.commit()
    except Exception:  # the change itself is committed; a replay then waits and goes to a sensible page
        log.exception("could not record the first result of a form key")
        db.session.rollback()
    return response


@event.listens_for(so.Session, "after_commit")
def _note_committed_key(session: Session) -> None:
    row = session.info.get("form_key_row")
    if row is None:
        return
    state = so.attributes.instance_state(row)
    kept = so.object_session(row) is session and not state.transient
    session.info.pop("form_key_row", None)
    if kept and state.identity is not None:
        session.info["form_key_committed"] = state.identity[0]


def register_form_keys(app: Flask) -> None:
    app.before_request(_claim_form_key)
    app.after_request(_record_first_result)
    app.jinja_env.globals["new_form_key"] = new_form_key
