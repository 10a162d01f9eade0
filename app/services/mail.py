"""Email: what is queued for whom, each person's choice of optional kinds, and the timed fallback.

Everything here only writes outbox rows in the caller's transaction, so a change that rolls back
emails nobody; the sender (``app.mail.worker``) delivers them after the commit, as push does. Links
in a message are built from the configured base URL, never from the request, and no message carries
a full IMEI (notice text has long digit runs cut to their last four, as the audit log does).

Mail goes out when SMTP is configured (``LANYARD_SMTP_HOST``), or in development, where the sender
keeps it for the ``/dev/mail`` page instead. Otherwise nothing is queued at all: a queue that could
never be sent would only grow.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from pathlib import Path

import jinja2
import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.models import (
    ApprovalMailWatch,
    LoginAttempt,
    MailKind,
    MailOutbox,
    MailPreference,
    Notification,
    PermissionRequest,
    PushSubscription,
    RequestStatus,
    Role,
    User,
)
from app.services.accounts import find_user_by_email, issue_password_token, normalise_email
from app.services.audit import record_audit_event
from app.services.errors import ValidationFailed
from app.services.personal_data import register_section
from app.services.settings import define_setting, get_setting

QUEUED_FLAG = "lanyard_mail_queued"
# PostgreSQL NOTIFY channel: delivered at commit, it wakes `flask mail-worker` processes at once.
NOTIFY_CHANNEL = "lanyard_mail"
_LONG_DIGIT_RUN = re.compile(r"\d{14,}")
_LINE_BREAKS = re.compile(r"[\r\n\t]+")

APPROVAL_FALLBACK_MINUTES = define_setting(
    "mail.approval_fallback_minutes",
    3,
    "Minutes a permission request may wait before approvers whose push notifications do not work are emailed",
)

# Self-service password resets: at most this many per address, and per IP, in the window.
RESET_WINDOW = timedelta(hours=1)
RESET_PER_ADDRESS = 3
RESET_PER_IP = 20

# Which optional kinds each role is offered on the account page (loan reminders go to any borrower).
KIND_ROLES: dict[MailKind, tuple[Role, ...]] = {
    MailKind.DEVICE_LOST: (Role.OFFICE,),
    MailKind.AUDIT_DIGEST: (Role.ADMIN, Role.GOVERNOR),
    MailKind.LOAN_REMINDER: (Role.STAFF,),
    MailKind.APPROVAL_WAITING: (Role.APPROVER,),
}

# Notices (by their kind) that are emailed too, and the message kind each becomes.
NOTICE_MAIL: dict[str, MailKind] = {
    "device.reported_lost": MailKind.DEVICE_LOST,
    "audit.head_published": MailKind.AUDIT_DIGEST,
    "audit.chain_broken": MailKind.AUDIT_DIGEST,
    "loan.due_today": MailKind.LOAN_REMINDER,
    "loan.overdue": MailKind.LOAN_REMINDER,
    "policy.reminder": MailKind.POLICY_REMINDER,
    "policy.review_due": MailKind.POLICY_REMINDER,
}
# Notices that ask an approver to decide: watched, and emailed later if push cannot reach them.
APPROVAL_NOTICES = ("permission.requested", "permission.escalated")


def safe_text(text: str) -> str:
    """Cut any IMEI-length digit run to its last four, so no message carries a full IMEI."""
    return _LONG_DIGIT_RUN.sub(lambda match: "…" + match.group(0)[-4:], text or "")


def mail_mode() -> str:
    """``smtp`` when a server is configured, ``dev`` in development without one, else ``off``."""
    if not has_app_context():
        return "off"
    config = current_app.config
    if config.get("SMTP_HOST"):
        return "smtp"
    return "dev" if config.get("LANYARD_ENV") == "development" else "off"


def absolute_url(path: str) -> str:
    """A link for a message: the configured base URL and a path on this site, never the Host header."""
    return f"{current_app.config['BASE_URL']}{path if path.startswith('/') else '/' + path}"


def path_for(endpoint: str, **values) -> str:
    """The path of ``endpoint`` without a request (the sender and the scheduler have none)."""
    return current_app.url_map.bind("lanyard.invalid").build(endpoint, values)


def _school_name(session: Session) -> str:
    return (str(get_setting(session, "school.name") or "")).strip() or current_app.config["SCHOOL_NAME"]


def _sender_domain() -> str:
    sender = current_app.config.get("MAIL_FROM") or ""
    return sender.rpartition("@")[2].strip(" >") or "lanyard.invalid"


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


def render_message(session: Session, kind: MailKind, recipient_name: str, **context) -> RenderedMessage:
    """Render a kind's plain-text and HTML templates with what every message has."""
    context = {
        "school_name": _school_name(session),
        "recipient_name": recipient_name,
        **context,
    }
    # Every text a person typed (names, device models, areas) loses any IMEI-length digit run.
    context = {key: safe_text(value) if isinstance(value, str) and key != "link" else value for key, value in context.items()}
    context["base_url"] = current_app.config["BASE_URL"]
    context["preferences_url"] = absolute_url("/account#email") if kind.optional else ""
    subject = _LINE_BREAKS.sub(" ", _text_templates().get_template(f"{kind.value}.subject.txt").render(**context)).strip()[:200]
    return RenderedMessage(
        subject=subject,
        text=_text_templates().get_template(f"{kind.value}.txt").render(**context),
        # The template alone, without the page context processors: no signed-in person, nav or request.
        html=current_app.jinja_env.get_template(f"mail/{kind.value}.html").render(**context),
    )


@functools.cache
def _text_templates() -> jinja2.Environment:
    """The plain-text parts and subjects: never HTML, so never HTML-escaped (an ``&`` stays an ``&``).

    They live apart from ``templates/`` (where everything is HTML and autoescaped), in app/mail/text_templates.
    """
    folder = Path(__file__).resolve().parent.parent / "mail" / "text_templates"
    return jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=False, keep_trailing_newline=True)  # noqa: S701 (plain text, never HTML)


def _mark_queued(session: Session) -> None:
    session.info[QUEUED_FLAG] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


def _add(session: Session, kind: MailKind, address: str, user: User | None, message: RenderedMessage | None) -> MailOutbox:
    row = MailOutbox(
        kind=kind.value,
        user_id=user.id if user else None,
        to_address=address,
        subject=message.subject if message else "",
        text_body=message.text if message else "",
        html_body=message.html if message else "",
        message_id=make_msgid(domain=_sender_domain()),
        list_unsubscribe=f"<{absolute_url('/account#email')}>" if kind.optional else "",
        auto_submitted=kind != MailKind.INVITATION,
        prepared=message is not None,
    )
    session.add(row)
    return row


def disabled_kinds(session: Session, user_id: int) -> set[str]:
    return set(
        session.scalars(
            sa.select(MailPreference.kind).where(MailPreference.user_id == user_id, MailPreference.enabled.is_(False))
        )
    )


def wants_mail(session: Session, user: User, kind: MailKind) -> bool:
    """True for the invitation and reset; for optional kinds unless the person switched them off."""
    return user.is_active_account and (not kind.optional or kind.value not in disabled_kinds(session, user.id))


def queue_to_person(session: Session, kind: MailKind, user: User, **context) -> MailOutbox | None:
    """Queue one message of ``kind`` to ``user`` (if mail is on and they want it); None otherwise."""
    if mail_mode() == "off" or not wants_mail(session, user, kind):
        return None
    row = _add(session, kind, user.email, user, render_message(session, kind, user.display_name, **context))
    session.flush()
    _mark_queued(session)
    return row


def queue_invitation(session: Session, user: User, link: str) -> MailOutbox | None:
    """Email a new member of staff their set-password link (the admin still sees it on screen)."""
    return queue_to_person(session, MailKind.INVITATION, user, link=link)


# The notice channel ---------------------------------------------------------------------------


def queue_mail_for_notices(session: Session, notices: list[Notification], extra: dict) -> None:
    """The email channel of ``notify()``: mail the notices whose kinds are emailed, watch approvals."""
    if not notices or mail_mode() == "off":
        return
    kind = notices[0].kind
    if kind in APPROVAL_NOTICES:
        _watch_approvals(session, notices, extra)
        return
    mail_kind = NOTICE_MAIL.get(kind)
    if mail_kind is None:
        return
    users = {u.id: u for u in session.scalars(sa.select(User).where(User.id.in_({n.user_id for n in notices})))}
    off = set(
        session.scalars(
            sa.select(MailPreference.user_id).where(
                MailPreference.user_id.in_(users), MailPreference.kind == mail_kind.value, MailPreference.enabled.is_(False)
            )
        )
    )
    queued = False
    for notice in notices:
        user = users[notice.user_id]
        if user.id in off:
            continue
        message = render_message(
            session,
            mail_kind,
            user.display_name,
            title=safe_text(notice.title),
            body=safe_text(notice.body),
            link=absolute_url(notice.url or "/notices"),
            notice_kind=notice.kind,
        )
        _add(session, mail_kind, user.email, user, message)
        queued = True
    if queued:
        session.flush()
        _mark_queued(session)


def _watch_approvals(session: Session, notices: list[Notification], extra: dict) -> None:
    request_id = extra.get("request_id")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        return
    watched = set(session.scalars(sa.select(ApprovalMailWatch.approver_id).where(ApprovalMailWatch.request_id == request_id)))
    new = [
        {"request_id": request_id, "approver_id": user_id}
        for user_id in dict.fromkeys(n.user_id for n in notices)
        if user_id not in watched
    ]
    if new:  # one executemany, however many approvers
        session.execute(sa.insert(ApprovalMailWatch), new)


def has_working_push(session: Session, user_id: int) -> bool:
    """A push subscription that has not failed since it last worked (a new one counts as working)."""
    return bool(
        session.scalar(sa.select(sa.func.count()).where(PushSubscription.user_id == user_id, PushSubscription.failure_count == 0))
    )


def send_approval_fallbacks(session: Session, now: datetime) -> int:
    """Email approvers whose push cannot reach them about requests still waiting after the set minutes.

    Once per request per approver: each watch is settled (emailed or not) the first time it is due.
    A timed job: rows are taken with SKIP LOCKED (never waiting), so the next tick takes what was skipped.
    """
    if mail_mode() == "off":
        return 0
    minutes = int(get_setting(session, APPROVAL_FALLBACK_MINUTES.key))
    due = list(
        session.scalars(
            sa.select(ApprovalMailWatch)
            .where(ApprovalMailWatch.settled_at.is_(None), ApprovalMailWatch.notified_at <= now - timedelta(minutes=minutes))
            .order_by(ApprovalMailWatch.id)
            .limit(200)
            .with_for_update(skip_locked=True)
        )
    )
    emailed = 0
    for watch in due:
        watch.settled_at = now
        request = session.get(PermissionRequest, watch.request_id)
        approver = session.get(User, watch.approver_id)
        if request is None or request.status != RequestStatus.PENDING.value or approver is None:
            continue
        if not approver.has_role(Role.APPROVER) or has_working_push(session, approver.id):
            continue
        waited = int((now - request.created_at).total_seconds() // 60)
        row = queue_to_person(
            session,
            MailKind.APPROVAL_WAITING,
            approver,
            requester=request.requester.display_name,
            device=safe_text(request.device_label),
            area=request.area.name,
            reason=safe_text(request.reason_label),
            waited_minutes=waited,
            link=absolute_url(f"/approvals/{request.id}"),
        )
        if row is None:
            continue
        watch.emailed = True
        emailed += 1
        record_audit_event(
            session,
            None,
            "mail.approval_fallback_queued",
            "permission_request",
            request.id,
            {"approver_id": approver.id, "waited_minutes": waited},
            related={"user": approver.id},
        )
    session.flush()
    return emailed


# Self-service password reset ------------------------------------------------------------------


def _reset_key(what: str, value: str) -> str:
    return hashlib.sha256(f"password-reset|{what}|{value}".encode()).hexdigest()


def _recent(session: Session, key: str, since: datetime) -> int:
    return (
        session.scalar(sa.select(sa.func.count()).where(LoginAttempt.throttle_key == key, LoginAttempt.attempted_at > since)) or 0
    )


def _email_domain(address: str) -> str:
    return safe_text(address.rpartition("@")[2])[:100]


def request_password_reset(session: Session, *, email: str, ip: str) -> bool:
    """Queue a reset for an address, whoever it belongs to; False when throttled.

    Nothing here looks the address up: the sender does, so the answer (and its time) is the same
    whether or not someone has it. Throttled per address and per IP in the sign-in throttle's store.
    """
    address = normalise_email(email)
    if "@" not in address or len(address) > 254 or _LINE_BREAKS.search(address):
        raise ValidationFailed("Enter an email address.", {"email": ["Enter an email address, like name@school.org.uk."]})
    keys = (_reset_key("address", address), _reset_key("ip", ip))
    since = utcnow() - RESET_WINDOW
    throttled = _recent(session, keys[0], since) >= RESET_PER_ADDRESS or _recent(session, keys[1], since) >= RESET_PER_IP
    record_audit_event(
        session,
        None,
        "auth.password_reset_requested",
        "",
        "",
        {"email_domain": _email_domain(address), "throttled": throttled},
    )
    if throttled:
        return False
    for key in keys:
        session.add(LoginAttempt(throttle_key=key, succeeded=False))
    if mail_mode() != "off":
        _add(session, MailKind.PASSWORD_RESET, address, None, None)
        session.flush()
        _mark_queued(session)
    return True


def prepare_password_reset(session: Session, row: MailOutbox) -> bool:
    """Make the link and the message for a queued reset (the sender calls this in a write transaction).

    Return False, and settle the row unsent, when no active account has the address. Locks follow the
    one order: the person's links (issuing revokes older ones), the audit lock, then this outbox row.
    """
    user = find_user_by_email(session, row.to_address)
    now = utcnow()
    if user is None or not user.is_active_account:
        record_audit_event(
            session, None, "mail.password_reset_unmatched", "", "", {"email_domain": _email_domain(row.to_address)}
        )
        row.dead_at, row.last_error = now, "no active account has this address"
        return False
    token = issue_password_token(session, None, user, purpose="self_service_reset")
    message = render_message(
        session, MailKind.PASSWORD_RESET, user.display_name, link=absolute_url(path_for("auth.set_password", token=token))
    )
    row.user_id = user.id
    row.subject, row.text_body, row.html_body, row.prepared = message.subject, message.text, message.html, True
    return True


# Preferences --------------------------------------------------------------------------------------


def offered_kinds(user: User) -> list[MailKind]:
    """The optional kinds this person could receive, by their roles."""
    return [kind for kind, roles in KIND_ROLES.items() if user.has_role(*roles)]


def preferences_for(session: Session, user: User) -> list[tuple[MailKind, bool]]:
    off = disabled_kinds(session, user.id)
    return [(kind, kind.value not in off) for kind in offered_kinds(user)]


def set_preferences(session: Session, actor: User, enabled: set[str]) -> list[str]:
    """Switch the actor's optional kinds on (those in ``enabled``) and off (the rest offered); return changes."""
    unknown = enabled - {kind.value for kind in MailKind if kind.optional}
    if unknown:
        raise ValidationFailed("Choose from the kinds of email listed.", {"kinds": ["Choose from the kinds of email listed."]})
    stored = {
        row.kind: row
        for row in session.scalars(
            sa.select(MailPreference).where(MailPreference.user_id == actor.id).order_by(MailPreference.kind).with_for_update()
        )
    }
    changes = []
    for kind in offered_kinds(actor):
        wanted = kind.value in enabled
        row = stored.get(kind.value)
        if (row.enabled if row else True) == wanted:
            continue
        if row is None:
            session.add(MailPreference(user_id=actor.id, kind=kind.value, enabled=wanted))
        else:
            row.enabled, row.updated_at = wanted, utcnow()
        changes.append(f"{kind.value}:{'on' if wanted else 'off'}")
    if changes:
        session.flush()
        record_audit_event(session, actor, "mail.preferences_changed", "user", actor.id, {"changes": changes})
    return changes


@register_section
def _mail_data(session: Session, user: User) -> tuple[str, object]:
    """For "My data": the person's email choices and the messages queued to them (bodies are not kept)."""
    messages = session.scalars(sa.select(MailOutbox).where(MailOutbox.user_id == user.id).order_by(MailOutbox.id))
    return "email", {
        "choices": {kind.value: enabled for kind, enabled in preferences_for(session, user)},
        "messages": [
            {
                "kind": m.kind,
                "subject": m.subject,
                "queued_at": m.created_at.isoformat(),
                "sent_at": m.sent_at.isoformat() if m.sent_at else None,
                "dropped_at": m.dead_at.isoformat() if m.dead_at else None,
            }
            for m in messages
        ],
    }
