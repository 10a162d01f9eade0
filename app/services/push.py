"""Web Push subscriptions and the push channel that queues a message for each notice.

The channel runs inside ``notify()``, in the transaction of the event it tells about: it only writes
outbox rows, so a request that rolls back sends nothing, and the sender (``push_sender``) delivers
them after the commit. Payloads are small JSON and never hold a full IMEI (long digit runs are cut to
their last four, as in the audit log).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app, has_app_context

from app.models import ActionToken, Notification, PushOutbox, PushSubscription, Role, User
from app.services.action_tokens import has_action_handler, issue_action_tokens
from app.services.audit import record_audit_event
from app.services.errors import NotFound, ValidationFailed
from app.services.personal_data import register_section

QUEUED_FLAG = "lanyard_push_queued"
# PostgreSQL NOTIFY channel: delivered at commit (and dropped on rollback), it wakes `flask push-worker`
# processes at once; in-process senders are woken by the after-commit hook in push_sender.
NOTIFY_CHANNEL = "lanyard_push"
URGENCIES = ("very-low", "low", "normal", "high")
DEFAULT_PUSH_HOSTS = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "push.services.mozilla.com",
    "web.push.apple.com",
    "notify.windows.com",
)
_LONG_DIGIT_RUN = re.compile(r"\d{14,}")
_TOPIC_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class ActionableKind:
    """A notice kind whose push carries Approve/Deny tokens for ``extra[id_key]`` of ``subject_type``."""

    subject_type: str
    id_key: str
    roles: tuple[Role, ...]


_actionable: dict[str, ActionableKind] = {}


def register_actionable_kind(kind: str, subject_type: str, id_key: str, roles: tuple[Role, ...] = (Role.APPROVER,)) -> None:
    """Give pushes of notices with ``extra["kind"] == kind`` one-time action tokens for holders of ``roles``."""
    _actionable[kind] = ActionableKind(subject_type, id_key, roles)


# A new permission request is the one the head approves from the lock screen (DESIGN.md J3).
register_actionable_kind("permission.requested", "permission_request", "request_id")
# An escalated request goes to the delegates, who can decide it from the notification too.
register_actionable_kind("permission.escalated", "permission_request", "request_id")


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _host_allowed(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    return any(host == name or host.endswith("." + name) for name in allowed_hosts)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_subscription(endpoint: object, p256dh: object, auth: object, allowed_hosts: tuple[str, ...]) -> dict[str, list[str]]:
    """Check what a browser sent. The server will POST to the endpoint, so only known push services
    are accepted (anything else would let a signed-in person aim the server at internal addresses)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > 2048:
        errors["endpoint"] = ["Send the subscription's endpoint URL."]
    else:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
        secure = parts.scheme == "https"
        local_test_service = parts.scheme == "http" and _is_loopback(host)
        if not (secure or local_test_service) or not _host_allowed(host, allowed_hosts):
            errors["endpoint"] = ["This is not a push service Lanyard sends to."]
    try:
        key = _b64url_decode(p256dh) if isinstance(p256dh, str) and len(p256dh) <= 128 else b""
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
        if len(key) != 65:
            raise ValueError("not an uncompressed point")
    except (ValueError, binascii.Error):
        errors["p256dh"] = ["Send the browser's P-256 public key (keys.p256dh)."]
    try:
        secret = _b64url_decode(auth) if isinstance(auth, str) and len(auth) <= 64 else b""
        if len(secret) != 16:
            raise ValueError("not 16 bytes")
    except (ValueError, binascii.Error):
        errors["auth"] = ["Send the browser's 16-byte auth secret (keys.auth)."]
    return errors


def subscriptions_of(session, user: User) -> list[PushSubscription]:
    return list(
        session.scalars(
            sa.select(PushSubscription).where(PushSubscription.user_id == user.id).order_by(PushSubscription.id)
        )
    )


def owned_subscription(session, user: User, subscription_id: int) -> PushSubscription:
    """The person's own subscription; anyone else's is 'not found' (its existence is not revealed)."""
    subscription = session.get(PushSubscription, subscription_id)
    if subscription is None or subscription.user_id != user.id:
        raise NotFound("There is no such browser in your notifications.")
    return subscription


def subscribe(session, actor: User, *, endpoint: str, p256dh: str, auth: str, user_agent: str, allowed_hosts: tuple[str, ...]) -> tuple[PushSubscription, bool]:
    """Record (or refresh) this browser's subscription for the actor; return it and whether it is new."""
    if errors := validate_subscription(endpoint, p256dh, auth, allowed_hosts):
        raise ValidationFailed("The browser's subscription is not usable.", errors)
    existing = session.scalar(sa.select(PushSubscription).where(PushSubscription.endpoint == endpoint))
    host = urlsplit(endpoint).hostname or ""
    if existing is None:
        subscription = PushSubscription(
            user_id=actor.id, endpoint=endpoint, p256dh=p256dh, auth=auth, user_agent=user_agent[:255]
        )
        session.add(subscription)
        session.flush()
        record_audit_event(session, actor, "push.subscribed", "push_subscription", subscription.id, {"push_service": host})
        return subscription, True
    changed = (existing.user_id, existing.p256dh, existing.auth) != (actor.id, p256dh, auth)
    if changed:
        # The same browser, now signed in as someone else or with new keys: it follows its latest owner.
        previous_owner = existing.user_id
        existing.user_id, existing.p256dh, existing.auth = actor.id, p256dh, auth
        existing.user_agent = user_agent[:255]
        existing.failure_count = 0
        record_audit_event(
            session,
            actor,
            "push.subscription_refreshed",
            "push_subscription",
            existing.id,
            {"push_service": host, "changed_owner": previous_owner != actor.id},
        )
        session.flush()
    return existing, False


def unsubscribe(session, actor: User, subscription: PushSubscription) -> None:
    """Forget one of the actor's browsers; its unsent messages go with it."""
    if subscription.user_id != actor.id:
        raise NotFound("There is no such browser in your notifications.")
    record_audit_event(
        session,
        actor,
        "push.unsubscribed",
        "push_subscription",
        subscription.id,
        {"push_service": urlsplit(subscription.endpoint).hostname or ""},
    )
    session.delete(subscription)
    session.flush()


def safe_text(text: str) -> str:
    """Cut any IMEI-length digit run to its last four, so a push never carries a full IMEI."""
    return _LONG_DIGIT_RUN.sub(lambda match: "…" + match.group(0)[-4:], text)


@dataclass(frozen=True)
class PushSettings:
    ttl_seconds: int = 4 * 3600
    token_lifetime: timedelta = timedelta(minutes=60)

    @classmethod
    def current(cls) -> PushSettings:
        if not has_app_context():
            return cls()
        config = current_app.config
        return cls(
            ttl_seconds=int(config.get("PUSH_TTL_SECONDS", cls.ttl_seconds)),
            token_lifetime=timedelta(minutes=int(config.get("PUSH_ACTION_TOKEN_MINUTES", 60))),
        )


def _topic(subject_type: str, subject_id: int) -> str:
    return _TOPIC_UNSAFE.sub("-", f"{subject_type}-{subject_id}")[:32]


def queue_push_messages(session, notices: list[Notification], extra: dict) -> None:
    """The push channel: one outbox row per subscription of each notice's recipient, in this transaction."""
    if not notices:
        return
    settings = PushSettings.current()
    by_user: dict[int, list[PushSubscription]] = {}
    for subscription in session.scalars(
        sa.select(PushSubscription).where(PushSubscription.user_id.in_({n.user_id for n in notices}))
    ):
        by_user.setdefault(subscription.user_id, []).append(subscription)
    actionable = _actionable.get(str(extra.get("kind", "")))
    subject_id = extra.get(actionable.id_key) if actionable else None
    queued = False
    for notice in notices:
        subscriptions = by_user.get(notice.user_id)
        if not subscriptions:
            continue
        payload: dict = {
            "title": safe_text(notice.title),
            "body": safe_text(notice.body),
            "url": notice.url or "/notices",
            "kind": notice.kind,
            "notice_id": notice.id,
        }
        urgency, ttl, topic = "normal", settings.ttl_seconds, None
        if actionable and isinstance(subject_id, int) and not isinstance(subject_id, bool):
            payload[actionable.id_key] = subject_id
            topic = _topic(actionable.subject_type, subject_id)
            recipient = session.get(User, notice.user_id)
            if recipient.has_role(*actionable.roles) and has_action_handler(actionable.subject_type):
                payload["actions"] = issue_action_tokens(
                    session, recipient, actionable.subject_type, subject_id, settings.token_lifetime
                )
                urgency = "high"
                ttl = min(ttl, int(settings.token_lifetime.total_seconds()))
        if extra.get("urgency") in URGENCIES:
            urgency = extra["urgency"]
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        for subscription in subscriptions:
            session.add(PushOutbox(subscription_id=subscription.id, payload=body, urgency=urgency, ttl=ttl, topic=topic))
            queued = True
    if queued:
        session.flush()
        session.info[QUEUED_FLAG] = True
        if session.get_bind().dialect.name == "postgresql":
            session.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


@register_section
def _push_data(session, user: User) -> tuple[str, object]:
    """For "My data": the browsers that get this person's pushes and the action buttons sent to them."""
    tokens = session.scalars(sa.select(ActionToken).where(ActionToken.approver_id == user.id).order_by(ActionToken.id))
    return "push", {
        "browsers": [
            {
                "push_service": urlsplit(s.endpoint).hostname or "",
                "user_agent": s.user_agent,
                "created_at": s.created_at.isoformat(),
                "last_success_at": s.last_success_at.isoformat() if s.last_success_at else None,
                "failure_count": s.failure_count,
            }
            for s in subscriptions_of(session, user)
        ],
        "action_buttons": [
            {
                "subject_type": t.subject_type,
                "subject_id": t.subject_id,
                "action": t.action,
                "created_at": t.created_at.isoformat(),
                "expires_at": t.expires_at.isoformat(),
                "used_at": t.used_at.isoformat() if t.used_at else None,
            }
            for t in tokens
        ],
    }
