"""Per-request rules shared by every page and API call: sessions, write transactions, headers.

A request that may write holds SQLite's write lock for its write only (see app/database.py): its
authentication, CSRF check and form parsing read in a deferred transaction, ``begin_request_write``
opens the write phase just before the view (and the form key's claim), and a page drawn after the
write (or instead of it) renders outside the lock.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Flask, abort, before_render_template, current_app, g, request, session, url_for
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from app.database import begin_write, end_write_phase, release_unused_write, reset_write_intent, set_write_intent
from app.extensions import csrf, db, login_manager
from app.ids import MAX_ID, URL_ID_PATTERN
from app.problems import problem
from app.services import accounts
from app.services.accounts import idle_too_long, live_session
from app.services.api_tokens import note_token_use, user_for_token
from app.services.audit import Origin, reset_origin, set_origin

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class BoundedIntConverter(IntegerConverter):
    """Ids in URLs stop at the database's integer range: a larger number (or 0) is simply not found.

    The range is in the pattern, not only in the conversion: a path whose id is out of range matches no
    rule, so it is a 404 whatever the method (see ``app.ids.URL_ID_PATTERN``).
    """

    regex = URL_ID_PATTERN

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# Responses that hold nothing personal and may be cached (everything else is no-store).
CACHEABLE_ENDPOINTS = {"static", "main.offline", "main.manifest", "main.privacy", "main.service_worker", "main.school_logo"}


def client_ip() -> str:
    return request.remote_addr or ""


def _absolute_session_limit() -> timedelta:
    return timedelta(hours=current_app.config["SESSION_ABSOLUTE_HOURS"])


@login_manager.user_loader
def load_user(user_id: str):
    """Accept the cookie only while its server-side session is live and not idle too long.

    An API call that carries an Authorization header is judged by that header alone: the cookie that
    came along is never a fallback (see _begin_request).
    """
    if api_authorization() is not None:
        return None
    config = current_app.config
    now = time.time()
    seen = session.get("seen", 0)
    if idle_too_long(seen, now, timedelta(minutes=config["SESSION_IDLE_MINUTES"])):
        g.session_expired = True
        return None
    try:
        live = live_session(db.session, int(user_id), session.get("sid"), _absolute_session_limit())
    except ValueError:
        return None
    if live is None:
        g.session_expired = True
        return None
    if now - seen > 30:
        session["seen"] = now
    g.current_policy_id = live.current_policy_id
    return live.user


def api_authorization() -> str | None:
    """The Authorization header of a JSON API call, as sent (None when absent; pages never read it)."""
    if request.path.startswith("/api/") and "Authorization" in request.headers:
        return request.headers.get("Authorization", "")
    return None


def bearer_token() -> str | None:
    """The personal API token of an API call's ``Authorization: Bearer ...`` header, else None."""
    header = api_authorization() or ""
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


@login_manager.request_loader
def load_user_from_token(_request):
    """The person _begin_request found behind the call's bearer token (nobody else)."""
    return g.get("api_token_user")


def _authenticate_token_call():
    """Resolve an API call's Authorization header before anything runs; a header that is not a live token is a 401.

    A wrong, revoked or malformed token must never fall back to the cookie session that came along,
    nor skip the CSRF check that session would need. The lookup reads; when the token's hourly use is
    due, recording it is a write of its own (the write lock, decided again under it, committed).
    """
    secret = bearer_token()
    found = user_for_token(db.session, secret) if secret else None
    if found is None:
        db.session.rollback()
        return credentials_refused()
    user, token, due = found
    g.api_token_id = token.id
    g.api_token_user = user
    if due:
        # The token's audited use stands whatever the request does next. Otherwise there is nothing to
        # commit, and not ending the transaction keeps the person and their roles loaded for the request.
        begin_write(db.session)
        if note_token_use(db.session, token, user) is None:
            db.session.rollback()
            return credentials_refused()  # revoked or closed between the lookup and the write
        db.session.commit()
    return None


def credentials_refused():
    """401 for an Authorization header that is not a live personal API token."""
    response = problem(
        401,
        "Not a valid API token",
        "The Authorization header does not hold a live personal API token: it may be mistyped, revoked, or its "
        "owner's account closed. Send 'Authorization: Bearer <token>' with a token from Account > API tokens.",
        "invalid-token",
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="Lanyard", error="invalid_token"'
    return response


def _begin_request():
    token_call = api_authorization() is not None
    # Authentication and the CSRF check read: a deferred transaction, whatever the method.
    g.write_intent_token = set_write_intent(False)
    g.origin_token = set_origin(Origin(ip=client_ip(), user_agent=request.user_agent.string or ""))
    if request.path.startswith("/api/") and any(len(request.args.getlist(key)) > 1 for key in request.args):
        abort(400, "Send each query parameter once.")
    if token_call:
        # A live bearer token cannot be sent by another site's form, so token calls are not asked for
        # a CSRF token; anything else in the header is refused here, before the cookie is looked at.
        return _authenticate_token_call()
    # Cookie sessions need the CSRF token on every change.
    csrf.protect(apply_exemptions=True)
    return None


def begin_request_write():
    """Open the write phase of a request that may write (any method but GET, HEAD, OPTIONS), just before its view.

    Registered after the request rules and the policy gate (so the person is known, the CSRF token
    checked and the form parsed, all in a read transaction) and before the form key is claimed (so
    the key and the view's changes commit together, under the write lock). The person is loaded
    here if nothing asked yet, so that lookup stays outside the lock too.
    """
    if request.method in SAFE_METHODS:
        return None
    cookie_user_id = current_user.id if current_user.is_authenticated and "api_token_user" not in g else None
    # Nothing before this point writes, but a session shared by several requests (one app context pushed
    # around them, as an in-process WSGI client does) may still hold an unfinished request's changes:
    # dropped here, as production's teardown drops them, rather than carried into this write.
    db.session.rollback()
    begin_write(db.session)
    if cookie_user_id is not None:
        _reread_session_person(cookie_user_id)
    return None


def _reread_session_person(user_id: int) -> None:
    """The person and their roles read again in the write transaction: the rollback above expired them,
    and the write must decide on what the database holds now. The session lookup does it in the one
    statement the person's reload would cost anyway; a session ended in between leaves the roles to be
    loaded from the rows."""
    live = accounts.live_session(db.session, user_id, session.get("sid"), _absolute_session_limit())
    if live is None:
        current_user.forget_session_roles()


def _draw_outside_the_write(_sender, template, context, **_extra) -> None:
    """A page drawn while the write phase is open but nothing was written (a form that failed validation,
    a 404 for a missing object) ends the unused write transaction first: the template renders without the
    lock. A transaction that has written keeps it; the route commits after drawing."""
    from app.errors import avoid_database

    if not avoid_database():
        release_unused_write(db.session)


def _end_request(_error=None) -> None:
    end_write_phase(db.session)
    if token := g.pop("write_intent_token", None):
        reset_write_intent(token)
    if token := g.pop("origin_token", None):
        reset_origin(token)


def _drawn_for_someone(response) -> bool:
    """A public page (privacy notice, offline page) drawn for a signed-in person names them: personal too.

    An error page drawn because the database failed is taken as personal without asking who is signed
    in (that would query the failing database again).
    """
    from app.errors import avoid_database

    if avoid_database():
        return True
    return response.mimetype == "text/html" and current_user.is_authenticated


def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Permissions-Policy", "camera=(self), microphone=(), geolocation=(), payment=(), usb=()")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config["HSTS"] and request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if request.endpoint not in CACHEABLE_ENDPOINTS or _drawn_for_someone(response):
        headers["Cache-Control"] = "no-store"
        headers.setdefault("Vary", "Cookie")
    return response


def _user_context() -> dict:
    from app.models import Role
    from app.navigation import navigation_for
    from app.services.home import unread_count

    if current_user.is_authenticated:
        return {
            "nav_items": navigation_for(current_user),
            "unread_notices": unread_count(db.session, current_user),
            "pending_approvals": _pending_approvals() if current_user.has_role(Role.APPROVER) else 0,
        }
    return {"nav_items": [], "unread_notices": 0, "pending_approvals": 0}


_PLAIN_PATHS: dict[tuple[str, str], str] = {}


def path_for(endpoint: str) -> str:
    """``url_for(endpoint)`` for a page without arguments (the navigation, the footer's links), worked out
    once per application root: every page draws a dozen of them (issue 13)."""
    key = (request.script_root, endpoint)
    path = _PLAIN_PATHS.get(key)
    if path is None:
        path = _PLAIN_PATHS[key] = url_for(endpoint)
    return path


def _pending_approvals() -> int:
    """The Approvals tab's count, asked for once a request (the inbox has already counted it)."""
    from app.services.home import pending_count

    if "pending_count" not in g:
        g.pending_count = pending_count(db.session)
    return g.pending_count


def register_request_rules(app: Flask) -> None:
    app.before_request(_begin_request)
    app.teardown_request(_end_request)
    before_render_template.connect(_draw_outside_the_write, app)
    app.after_request(_security_headers)
    app.context_processor(_user_context)
    app.jinja_env.globals["path_for"] = path_for
