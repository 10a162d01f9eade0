"""Web Push subscriptions and the push channel that queues a message for each notice.

The channel runs inside ``notify()``, in the transaction of the event it tells about: it only writes
outbox rows, so a request that rolls back sends nothing, and the sender (``app.push.worker``) delivers
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
from urllib.parse import SplitResult, urlsplit

import idna
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app, has_app_context
from sqlalchemy.orm import Session
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from app.models import ActionToken, Notification, PushOutbox, PushSubscription, Role, User
from app.services.action_tokens import has_action_handler, issue_action_tokens
from app.services.audit import record_audit_event
from app.services.errors import NotFound, ValidationFailed
from app.services.personal_data import register_section

QUEUED_FLAG = "lanyard_push_queued"
# PostgreSQL NOTIFY channel: delivered at commit (and dropped on rollback), it wakes `flask push-worker`
# processes at once; in-process senders are woken by the after-commit hook in app.push.worker.
NOTIFY_CHANNEL = "lanyard_push"
URGENCIES = ("very-low", "low", "normal", "high")
# The browsers' push services, matched on a dot boundary (the name itself or any name under it).
DEFAULT_PUSH_HOSTS = (
    "fcm.googleapis.com",  # Chrome, Edge on Android, Opera
    "android.googleapis.com",  # Chrome's legacy GCM endpoints
    "push.services.mozilla.com",  # Firefox (updates.push.services.mozilla.com and its siblings)
    "notify.windows.com",  # Edge on Windows (WNS)
    "web.push.apple.com",  # Safari
    "push.apple.com",
)
MAX_ENDPOINT_LENGTH = 1024
_LONG_DIGIT_RUN = re.compile(r"\d{14,}")
_HOST_NAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
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


@dataclass(frozen=True)
class PushHost:
    """A push service Lanyard sends to: a host name and the one port it listens on."""

    name: str
    port: int = 443
    # The public services: the name and any name under it (on a dot boundary). A school's own service
    # is matched exactly.
    suffix: bool = True
    # A school's own service on this machine (loopback) may speak plain http: nothing crosses a network.
    plain_http: bool = False

    def matches(self, host: str) -> bool:
        return host == self.name or (self.suffix and host.endswith("." + self.name))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_extra_hosts(value: str | tuple[str, ...] | list[str] | None) -> tuple[PushHost, ...]:
    """Read the school's own push services (``LANYARD_PUSH_EXTRA_HOSTS``): comma-separated ``host[:port]``.

    Raise ValueError naming a malformed entry, so a typo stops the app at start rather than silently
    refusing every browser.
    """
    if not value:
        return ()
    entries = value.split(",") if isinstance(value, str) else list(value)
    hosts = []
    for entry in entries:
        text = entry.strip().lower()
        if not text:
            continue
        parts = urlsplit("//" + text)
        try:
            port = parts.port
        except ValueError:
            port = -1
        host = parts.hostname or ""
        if parts.netloc != text or port == -1 or parts.username is not None or not host or host.endswith("."):
            raise ValueError(f"LANYARD_PUSH_EXTRA_HOSTS: {entry.strip()!r} is not host or host:port")
        hosts.append(PushHost(name=host, port=port or 443, suffix=False, plain_http=_is_loopback(host)))
    return tuple(hosts)


@dataclass(frozen=True)
class PushServices:
    """The push services subscriptions may point at: the browsers' public ones and the school's own."""

    hosts: tuple[PushHost, ...]

    @classmethod
    def public(cls) -> PushServices:
        return cls(tuple(PushHost(name) for name in DEFAULT_PUSH_HOSTS))

    @classmethod
    def from_config(cls, config) -> PushServices:
        """The public services plus ``PUSH_EXTRA_HOSTS`` from the app's configuration."""
        return cls(cls.public().hosts + parse_extra_hosts(config.get("PUSH_EXTRA_HOSTS")))

    @classmethod
    def current(cls) -> PushServices:
        return cls.from_config(current_app.config) if has_app_context() else cls.public()

    def find(self, host: str) -> list[PushHost]:
        return [candidate for candidate in self.hosts if candidate.matches(host)]


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _is_ip_literal(host: str) -> bool:
    """An IP address in any spelling a resolver accepts: dotted, bracketed v6, or 2130706433, 0x7f.1, 017.1."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    labels = host.split(".")
    # No top-level domain is numeric, so a numeric last label means inet_aton would read it as an address.
    return all(_NUMERIC_LABEL.match(label) for label in labels) or bool(_NUMERIC_LABEL.match(labels[-1]))


def _client_reading(endpoint: str) -> tuple[str, str, int | None, str | None] | None:
    """Scheme, host, port and userinfo as the HTTP client (requests over urllib3) will read the URL."""
    try:
        prepared = requests.models.PreparedRequest()
        prepared.prepare_url(endpoint, None)
        first, second = parse_url(endpoint), parse_url(prepared.url or "")
    except (requests.RequestException, LocationParseError, ValueError, UnicodeError):
        return None
    readings = {((url.scheme or "").lower(), (url.host or "").lower(), url.port, url.auth) for url in (first, second)}
    return readings.pop() if len(readings) == 1 else None


def endpoint_problem(endpoint: object, services: PushServices) -> str | None:
    """Say what is wrong with an endpoint the server would POST to, or None when it is a known push service.

    The URL is read by urllib.parse (what pywebpush signs as the audience) and by urllib3 (what requests
    connects to); anything they could read differently is refused, as is anything that is not plainly a
    named push service's host over https on 443: userinfo, backslashes, IP addresses, trailing dots.
    """
    if not isinstance(endpoint, str) or not endpoint:
        return "Send the subscription's endpoint URL."
    problem = _text_problem(endpoint)
    if problem:
        return problem
    parts = urlsplit(endpoint)
    try:
        split_port = parts.port
    except ValueError:
        return "The endpoint's port is not a number from 1 to 65535."
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    problem = _reading_problem(endpoint, parts, scheme, split_port)
    if problem:
        return problem
    candidates = services.find(host)
    return _host_problem(host, candidates) or _service_problem(endpoint, scheme, host, split_port, candidates)


def _text_problem(endpoint: str) -> str | None:
    """What is wrong with the endpoint's characters, before it is read as a URL."""
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        return f"The endpoint is longer than {MAX_ENDPOINT_LENGTH} characters."
    if "\\" in endpoint:
        return "The endpoint must not contain a backslash."
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in endpoint):
        return "The endpoint must not contain spaces or control characters."
    if not endpoint.isascii():
        return "The endpoint must be plain ASCII (a push service's host in its punycode form)."
    return None


def _reading_problem(endpoint: str, parts: SplitResult, scheme: str, split_port: int | None) -> str | None:
    """What is wrong with the URL as urllib.parse and urllib3 read it: userinfo, IP literals, two readings."""
    host = parts.hostname or ""
    if "@" in parts.netloc or parts.username is not None:
        return "The endpoint must not carry a user name or password (user@host)."
    if parts.netloc.startswith("["):
        return "The endpoint must name a push service's host, not an IP address."
    client = _client_reading(endpoint)
    if client is None or client != (scheme, host, split_port, None):
        return "The endpoint reads differently to different URL parsers, so it is not used."
    if parts.fragment or "#" in endpoint:
        return "The endpoint must not have a #fragment."
    if not host:
        return "The endpoint has no host."
    if host.endswith(".") or ".." in host:
        return "The endpoint's host must not end with a dot or have an empty label."
    return None


def _host_problem(host: str, candidates: list[PushHost]) -> str | None:
    """What is wrong with the host: an IP address or an odd spelling (unless a service names it exactly), or unknown."""
    if not any(not candidate.suffix for candidate in candidates):
        if _is_ip_literal(host):
            return "The endpoint must name a push service's host, not an IP address."
        try:
            ascii_host = idna.encode(idna.decode(host), uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return "The endpoint's host is not a valid internationalised (punycode) name."
        if ascii_host != host or not _HOST_NAME.match(host):
            return "The endpoint's host is not a plain host name."
    if not candidates:
        return f"{host} is not a push service Lanyard sends to."
    return None


def _service_problem(endpoint: str, scheme: str, host: str, split_port: int | None, candidates: list[PushHost]) -> str | None:
    """What is wrong with the scheme and port for the push services that match the host (None when one fits)."""
    default_port = {"https": 443, "http": 80}.get(scheme)
    port = split_port or default_port
    plain_netloc = host if port == default_port else f"{host}:{port}"
    if not endpoint.startswith(f"{scheme}://{plain_netloc}/"):
        # What pywebpush signs as the audience is the scheme and host as written: keep them plain.
        return "The endpoint is not in the plain form browsers give (lower-case, no default port, then a path)."
    for candidate in candidates:
        if scheme == "https" or (scheme == "http" and candidate.plain_http):
            if port == candidate.port:
                return None
            return f"The endpoint must use port {candidate.port}, not {port}."
    return "The endpoint must use https."


def _key_problem(value: object, size: int) -> bool:
    """True unless ``value`` is unpadded (or correctly padded) base64url of exactly ``size`` bytes."""
    if not isinstance(value, str) or len(value) > 4 * size or not _B64URL.match(value):
        return True
    try:
        raw = _b64url_decode(value.rstrip("="))
    except (ValueError, binascii.Error):
        return True
    canonical = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return len(raw) != size or canonical != value.rstrip("=")


def validate_subscription(endpoint: object, p256dh: object, auth: object, services: PushServices) -> dict[str, list[str]]:
    """Check what a browser sent. The server will POST to the endpoint, so only known push services
    are accepted (anything else would let a signed-in person aim the server at internal addresses),
    and the keys must be what the encryption needs, so a bad one never reaches the sender."""
    errors: dict[str, list[str]] = {}
    if problem := endpoint_problem(endpoint, services):
        errors["endpoint"] = [problem]
    p256dh_ok = not _key_problem(p256dh, 65)
    if p256dh_ok:
        raw = _b64url_decode(str(p256dh).rstrip("="))
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            p256dh_ok = False
        p256dh_ok = p256dh_ok and raw[0] == 4
    if not p256dh_ok:
        errors["p256dh"] = ["Send the browser's P-256 public key (keys.p256dh): base64url of a 65-byte uncompressed point."]
    if _key_problem(auth, 16):
        errors["auth"] = ["Send the browser's auth secret (keys.auth): base64url of 16 bytes."]
    return errors


def subscriptions_of(session: Session, user: User) -> list[PushSubscription]:
    return list(
        session.scalars(sa.select(PushSubscription).where(PushSubscription.user_id == user.id).order_by(PushSubscription.id))
    )


def owned_subscription(session: Session, user: User, subscription_id: int) -> PushSubscription:
    """The person's own subscription; anyone else's is 'not found' (its existence is not revealed)."""
    subscription = session.get(PushSubscription, subscription_id)
    if subscription is None or subscription.user_id != user.id:
        raise NotFound("There is no such browser in your notifications.")
    return subscription


def subscribe(
    session: Session, actor: User, *, endpoint: str, p256dh: str, auth: str, user_agent: str, services: PushServices
) -> tuple[PushSubscription, bool]:
    """Record (or refresh) this browser's subscription for the actor; return it and whether it is new."""
    if errors := validate_subscription(endpoint, p256dh, auth, services):
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


def unsubscribe(session: Session, actor: User, subscription: PushSubscription) -> None:
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


def queue_push_messages(session: Session, notices: list[Notification], extra: dict) -> None:
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
            if recipient is not None and recipient.has_role(*actionable.roles) and has_action_handler(actionable.subject_type):
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
def _push_data(session: Session, user: User) -> tuple[str, object]:
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


TEST_PUSH_GAP = timedelta(minutes=1)


def send_test_push(session: Session, actor: User) -> int:
    """Queue a test notification to each of the person's own browsers; at most one a minute. Returns how many."""
    from app.clock import utcnow
    from app.models import AuditEvent
    from app.services.notifications import notify

    browsers = subscriptions_of(session, actor)
    if not browsers:
        raise ValidationFailed(
            "No browser gets your notifications yet: turn them on first.", {"test": ["Turn on notifications first."]}
        )
    last = session.scalar(
        sa.select(sa.func.max(AuditEvent.occurred_at)).where(
            AuditEvent.action == "push.test_sent", AuditEvent.actor_id == actor.id
        )
    )
    if last is not None and last > utcnow() - TEST_PUSH_GAP:
        raise ValidationFailed(
            "A test notification was sent less than a minute ago: wait a moment and look for it.", {"test": ["Wait a minute."]}
        )
    notify(
        session,
        [actor],
        kind="push.test",
        title="Test notification from Lanyard",
        body="Notifications work on this browser.",
        url="/notifications",
    )
    record_audit_event(session, actor, "push.test_sent", "user", actor.id, {"browsers": len(browsers)})
    return len(browsers)
