"""Accounts: creating and inviting staff, roles, signing in and out, ending sessions, leavers."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.orm import Session

from app.clock import local_today, utcnow
from app.database import rows_changed
from app.models import LoginAttempt, PasswordToken, PolicyVersion, Role, User, UserRole, UserSession
from app.services import passwords, text_search
from app.services.api_tokens import revoke_all_tokens
from app.services.audit import record_audit_event
from app.services.errors import Conflict, NotFound, ValidationFailed

INVITE_LIFETIME = timedelta(days=7)


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(sa.select(User).where(User.email == normalise_email(email)))


def create_user(
    session: Session, actor: User | None, *, email: str, display_name: str, roles: set[Role], password: str | None = None
) -> User:
    """Add a member of staff. Everyone holds the staff role; others are added to it."""
    email = normalise_email(email)
    errors: dict[str, list[str]] = {}
    if "@" not in email or len(email) > 254:
        errors["email"] = ["Enter an email address, like name@school.org.uk."]
    elif find_user_by_email(session, email) is not None:
        errors["email"] = ["Someone already has an account with this email address."]
    if not display_name.strip():
        errors["display_name"] = ["Enter the name colleagues know them by, like Mrs A Patel."]
    if password is not None and (problem := passwords.password_problem(password)):
        errors["password"] = [problem]
    if errors:
        raise ValidationFailed("Some details need correcting.", errors)
    user = User(email=email, display_name=display_name.strip())
    if password is not None:
        user.password_hash = passwords.hash_password(password)
    user.role_rows = [UserRole(role=role.value) for role in sorted(roles | {Role.STAFF})]
    session.add(user)
    session.flush()
    record_audit_event(session, actor, "user.created", "user", user.id, {"roles": sorted(r.value for r in user.roles)})
    return user


def _live_password_links(session: Session, user_id: int) -> list[PasswordToken]:
    """The person's links that could still set a password, locked in id order."""
    return list(
        session.scalars(
            sa.select(PasswordToken)
            .where(PasswordToken.user_id == user_id, PasswordToken.used_at.is_(None), PasswordToken.expires_at > utcnow())
            .order_by(PasswordToken.id)
            .with_for_update()
        )
    )


def _revoke_password_links(session: Session, actor: User | None, user: User, links: list[PasswordToken], reason: str) -> int:
    """End ``links`` now (a revoked link simply expires at this moment), with one audit event saying so."""
    if not links:
        return 0
    now = utcnow()
    for link in links:
        link.expires_at = now
    session.flush()
    record_audit_event(session, actor, "user.password_links_revoked", "user", user.id, {"count": len(links), "reason": reason})
    return len(links)


def issue_password_token(session: Session, actor: User | None, user: User, purpose: str = "invite") -> str:
    """Make a one-time set-password link token; only its hash is kept.

    Only the newest link works: every earlier one for the person is revoked. A password reset also
    revokes the person's API tokens (whoever knew the old password may have made one).
    """
    _revoke_password_links(session, actor, user, _live_password_links(session, user.id), f"new_{purpose}_link")
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordToken(
            user_id=user.id,
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            expires_at=utcnow() + INVITE_LIFETIME,
        )
    )
    if purpose == "password_reset":
        revoke_all_tokens(session, actor, user, "password_reset")
    record_audit_event(session, actor, f"user.{purpose}_issued", "user", user.id)
    return token


def find_password_token(session: Session, token: str) -> PasswordToken | None:
    row = session.scalar(
        sa.select(PasswordToken).where(PasswordToken.token_hash == hashlib.sha256((token or "").encode()).hexdigest())
    )
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


def set_password_with_token(session: Session, token: str, password: str) -> User:
    """Set the password through a link, once; every other outstanding link for the person dies with it."""
    row = find_password_token(session, token)
    if row is not None:
        # Lock all the person's links (in id order) so two links used at once cannot both set a password.
        links = _live_password_links(session, row.user_id)
        row = next((link for link in links if link.id == row.id), None)
    if row is None:
        raise NotFound("This link has expired or has already been used. Ask the school's admin for a new one.")
    user = session.get(User, row.user_id)
    if user is None or not user.is_active_account:
        raise NotFound("This account is not active.")
    if problem := passwords.password_problem(password):
        raise ValidationFailed(problem, {"password": [problem]})
    row.used_at = utcnow()
    user.password_hash = passwords.hash_password(password)
    end_all_sessions(session, user)
    record_audit_event(session, user, "user.password_set", "user", user.id)
    _revoke_password_links(session, user, user, [link for link in links if link.id != row.id], "password_set")
    return user


def set_roles(session: Session, actor: User | None, user: User, roles: set[Role]) -> None:
    """Replace a person's roles (staff is always kept). An admin cannot remove their own admin role.

    ``actor`` is None when the provisioning system (SCIM) or an import made the change.
    """
    roles = roles | {Role.STAFF}
    if actor is not None and user.id == actor.id and Role.ADMIN in user.roles and Role.ADMIN not in roles:
        raise Conflict("You cannot remove your own admin role; ask another admin.")
    before = sorted(r.value for r in user.roles)
    after = sorted(r.value for r in roles)
    if before == after:
        return
    user.role_rows = [row for row in user.role_rows if Role(row.role) in roles]
    for role in roles - user.roles:
        user.role_rows.append(UserRole(role=role.value))
    session.flush()
    record_audit_event(session, actor, "user.roles_changed", "user", user.id, {"from": before, "to": after})


def update_profile(session: Session, actor: User | None, user: User, *, display_name: str) -> None:
    if not display_name.strip():
        raise ValidationFailed("Enter a name.", {"display_name": ["Enter the name colleagues know them by."]})
    if display_name.strip() != user.display_name:
        user.display_name = display_name.strip()
        record_audit_event(session, actor, "user.updated", "user", user.id, {"fields": ["display_name"]})


def deactivate_user(session: Session, actor: User | None, user: User, *, reason: str | None = None) -> None:
    """A leaver: never deleted (the audit log points at them); every session ends at once.

    ``actor`` is None when no person did it: the end-date job, or the provisioning system (SCIM);
    ``reason`` then says which, in the audit event.
    """
    if actor is not None and user.id == actor.id:
        raise Conflict("You cannot deactivate your own account.")
    if not user.is_active_account:
        return
    user.is_active_account = False
    user.deactivated_at = utcnow()
    ended = end_all_sessions(session, user)
    details: dict[str, object] = {"sessions_ended": ended}
    if reason:
        details["reason"] = reason
    record_audit_event(session, actor, "user.deactivated", "user", user.id, details)


def reactivate_user(session: Session, actor: User | None, user: User) -> None:
    """Let a leaver sign in again. An end date already passed is cleared, or the end-date job would end them again."""
    if user.is_active_account:
        return
    user.is_active_account = True
    user.deactivated_at = None
    details: dict[str, object] = {}
    if user.end_date is not None and user.end_date < local_today():
        details["end_date_cleared"] = user.end_date.isoformat()
        user.end_date = None
    # Tokens made before the person left must not come back to life with the account.
    revoked = revoke_all_tokens(session, actor, user, "reactivated")
    record_audit_event(session, actor, "user.reactivated", "user", user.id, {"api_tokens_revoked": revoked, **details})


def end_all_sessions(session: Session, user: User) -> int:
    result = session.execute(
        sa.update(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None)).values(ended_at=utcnow())
    )
    return rows_changed(result)


# Signing in ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignInResult:
    user: User | None
    session_id: str | None = None
    throttled: bool = False


def throttle_key(email: str, ip: str) -> str:
    return hashlib.sha256(f"{normalise_email(email)}|{ip}".encode()).hexdigest()


def _recent_failures(session: Session, key: str, window: timedelta) -> int:
    since = utcnow() - window
    last_success = session.scalar(
        sa.select(sa.func.max(LoginAttempt.attempted_at)).where(
            LoginAttempt.throttle_key == key, LoginAttempt.succeeded.is_(True)
        )
    )
    query = sa.select(sa.func.count()).where(
        LoginAttempt.throttle_key == key, LoginAttempt.succeeded.is_(False), LoginAttempt.attempted_at > since
    )
    if last_success is not None:
        query = query.where(LoginAttempt.attempted_at > last_success)
    return session.scalar(query) or 0


def sign_in(
    session: Session, *, email: str, password: str, ip: str, user_agent: str, max_failures: int, window: timedelta
) -> SignInResult:
    """Check a password, keyed throttling on account + IP; record the attempt and audit it."""
    key = throttle_key(email, ip)
    user = find_user_by_email(session, email)
    if _recent_failures(session, key, window) >= max_failures:
        record_audit_event(
            session,
            user,
            "auth.sign_in_throttled",
            "user",
            user.id if user else "",
            {"email_domain": normalise_email(email).rpartition("@")[2]},
        )
        return SignInResult(None, throttled=True)
    ok = passwords.check_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active_account:
        session.add(LoginAttempt(throttle_key=key, succeeded=False))
        record_audit_event(
            session,
            user,
            "auth.sign_in_failed",
            "user",
            user.id if user else "",
            {"reason": "deactivated" if ok and user and not user.is_active_account else "bad_credentials"},
        )
        return SignInResult(None)
    session.add(LoginAttempt(throttle_key=key, succeeded=True))
    if user.password_hash is not None and passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return SignInResult(user, start_session(session, user, ip=ip, user_agent=user_agent, method="password"))


def start_session(session: Session, user: User, *, ip: str, user_agent: str, method: str) -> str:
    """Open a new server-side session for a person who has just proved who they are."""
    session_id = secrets.token_urlsafe(32)
    session.add(UserSession(id=session_id, user_id=user.id, ip=ip[:64], user_agent=user_agent[:255]))
    record_audit_event(session, user, "auth.signed_in", "user", user.id, {"method": method})
    return session_id


def sign_out(session: Session, user: User, session_id: str | None) -> None:
    if session_id:
        row = session.get(UserSession, session_id)
        if row is not None and row.ended_at is None:
            row.ended_at = utcnow()
    record_audit_event(session, user, "auth.signed_out", "user", user.id)


def idle_too_long(seen: float, now: float, idle: timedelta) -> bool:
    """True when the browser's last request (``seen``, Unix seconds from its cookie) is more than ``idle``
    before ``now``: the session then ends however recently it began (DESIGN.md section 10)."""
    return now - seen > idle.total_seconds()


@dataclass(frozen=True)
class LiveSession:
    user: User
    current_policy_id: int | None  # read in the same statement, for the policy gate (app/policy/gate.py)


# Built once: SQLAlchemy works out a statement's cache key once per statement object, and this one runs
# on every signed-in request (issue 13). The person's roles and the current policy's id come with it.
_LIVE_SESSION = (
    sa.select(
        User,
        UserSession.created_at,
        sa.select(sa.func.aggregate_strings(UserRole.role, ","))
        .where(UserRole.user_id == User.id)
        .correlate(User)
        .scalar_subquery(),
        sa.select(sa.func.max(PolicyVersion.id)).scalar_subquery(),
    )
    .join(UserSession, UserSession.user_id == User.id)
    .where(
        UserSession.id == sa.bindparam("session_id"),
        UserSession.user_id == sa.bindparam("user_id"),
        UserSession.ended_at.is_(None),
    )
    .options(so.lazyload(User.role_rows))
)


def live_session(session: Session, user_id: int, session_id: str | None, absolute: timedelta) -> LiveSession | None:
    """This browser's session if it is still live (not ended, not too old, account active), in one query:
    the person, their roles and the current policy version's id."""
    if not session_id:
        return None
    found = session.execute(_LIVE_SESSION, {"session_id": session_id, "user_id": user_id}).first()
    if found is None:
        return None
    user, created_at, role_names, policy_id = found
    if created_at + absolute <= utcnow() or not user.is_active_account:
        return None
    user.remember_session_roles(frozenset(role_names.split(",")) if role_names else frozenset())
    return LiveSession(user, policy_id)


def live_session_user(session: Session, user_id: int, session_id: str | None, absolute: timedelta) -> User | None:
    """Return the user if this browser's session is still live: not ended, not too old, account active."""
    found = live_session(session, user_id, session_id, absolute)
    return found.user if found is not None else None


def change_password(session: Session, user: User, *, current: str, new: str, keep_session_id: str | None) -> None:
    if not passwords.check_password(user.password_hash, current):
        raise ValidationFailed(
            "Your current password is not right.", {"current_password": ["That is not your current password."]}
        )
    if problem := passwords.password_problem(new):
        raise ValidationFailed(problem, {"new_password": [problem]})
    user.password_hash = passwords.hash_password(new)
    session.execute(
        sa.update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None), UserSession.id != (keep_session_id or ""))
        .values(ended_at=utcnow())
    )
    record_audit_event(session, user, "user.password_changed", "user", user.id)


def users_with_role(session: Session, role: Role) -> list[User]:
    return list(
        session.scalars(
            sa.select(User)
            .join(UserRole)
            .where(UserRole.role == role.value, User.is_active_account.is_(True))
            .order_by(User.display_name)
        )
    )


def get_person(session: Session, user_id: int) -> User:
    """Anyone with an account, active or not, or NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("There is no such person.")
    return user


def search_people(session: Session, text: str = "", staff_type: str = "", limit: int = 200) -> list[User]:
    """The staff list: active people first, by name; ``text`` is part of a name or an email (ignoring case,
    ``%`` and ``_`` literal), answered from the search indexes; ``staff_type`` filters."""
    query = sa.select(User).order_by(User.is_active_account.desc(), User.display_name)
    if text := text_search.searchable(text):
        query = query.where(text_search.people_matching(session, text, with_email=True))
    if staff_type:
        query = query.where(User.staff_type == staff_type)
    return list(session.scalars(query.limit(limit)))


def active_people(session: Session) -> list[User]:
    """Everyone with an active account, by name."""
    return list(session.scalars(sa.select(User).where(User.is_active_account.is_(True)).order_by(User.display_name)))
