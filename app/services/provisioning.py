"""Staff provisioning: the provisioning system's bearer tokens (SCIM), and creating or changing a
person from a record that a SCIM call or a staff CSV row describes.

A provisioning change has no person behind it: the audit events name no actor and carry ``via``
(``scim`` with the token's id, or ``csv``) in their details.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.models import Role, ScimToken, StaffType, User, UserRole
from app.services import accounts
from app.services.audit import record_audit_event
from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.staff_terms import set_staff_terms

SCIM_TOKEN_PREFIX = "lny_scim_"  # noqa: S105  (a marker, not a secret)
MAX_ACTIVE_SCIM_TOKENS = 5
USE_RECORD_INTERVAL = timedelta(hours=1)


# Tokens --------------------------------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_scim_token(session: Session, admin: User, name: str) -> tuple[ScimToken, str]:
    """Make a provisioning token; the secret is returned once and only its hash is kept."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ValidationFailed("Name the token.", {"name": ["Give it a name up to 80 characters, like 'Entra ID provisioning'."]})
    active = session.scalar(sa.select(sa.func.count()).where(ScimToken.revoked_at.is_(None))) or 0
    if active >= MAX_ACTIVE_SCIM_TOKENS:
        raise ValidationFailed(
            "Too many tokens.", {"name": [f"The school can have {MAX_ACTIVE_SCIM_TOKENS} provisioning tokens; revoke one first."]}
        )
    secret = SCIM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ScimToken(name=name, token_hash=_hash(secret), prefix=secret[:12], created_by_id=admin.id)
    session.add(token)
    session.flush()
    record_audit_event(session, admin, "scim_token.created", "scim_token", token.id, {"name": name})
    return token, secret


def scim_tokens(session: Session) -> list[ScimToken]:
    return list(session.scalars(sa.select(ScimToken).order_by(ScimToken.id.desc())))


def revoke_scim_token(session: Session, admin: User, token_id: int) -> ScimToken:
    token = session.get(ScimToken, token_id)
    if token is None:
        raise NotFound("There is no such token.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record_audit_event(session, admin, "scim_token.revoked", "scim_token", token.id)
    return token


def scim_token_for(session: Session, secret: str | None, *, note_use: bool = False) -> ScimToken | None:
    """The live provisioning token behind a bearer secret, else None.

    With ``note_use`` (a call that writes anyway) its last use is noted, at most hourly.
    """
    if not secret or not secret.startswith(SCIM_TOKEN_PREFIX):
        return None
    token = session.scalar(sa.select(ScimToken).where(ScimToken.token_hash == _hash(secret)))
    if token is None or token.revoked_at is not None:
        return None
    now = utcnow()
    if note_use and (token.last_used_at is None or now - token.last_used_at >= USE_RECORD_INTERVAL):
        token.last_used_at = now
    return token


# People --------------------------------------------------------------------------------------------


@dataclass
class StaffRecord:
    """What a provisioning source says about one person. None means "not said: leave it as it is"."""

    email: str
    display_name: str
    roles: set[Role] | None = None
    staff_type: StaffType | None = None
    end_date: date | None = None
    end_date_given: bool = False
    active: bool | None = None
    external_id: str | None = None


def _admins_left(session: Session, without: User) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(User)
            .join(UserRole)
            .where(UserRole.role == Role.ADMIN.value, User.is_active_account.is_(True), User.id != without.id)
        )
        or 0
    )


def _keep_an_admin(session: Session, user: User, *, roles: set[Role] | None, active: bool | None) -> None:
    """A provisioning source never removes the school's last active admin (nobody could undo it)."""
    if Role.ADMIN not in user.roles or not user.is_active_account:
        return
    losing = (roles is not None and Role.ADMIN not in roles) or active is False
    if losing and _admins_left(session, user) == 0:
        raise Conflict(f"{user.email} is the school's only active admin; make someone else an admin first.")


def change_email(session: Session, actor: User | None, user: User, email: str, *, via: str) -> bool:
    email = accounts.normalise_email(email)
    if email == user.email:
        return False
    if "@" not in email or len(email) > 254:
        raise ValidationFailed("Enter an email address.", {"email": ["Enter an email address, like name@school.org.uk."]})
    other = accounts.find_user_by_email(session, email)
    if other is not None and other.id != user.id:
        raise Conflict("Someone else already has an account with this email address.")
    user.email = email
    session.flush()
    record_audit_event(session, actor, "user.email_changed", "user", user.id, {"via": via, "domain": email.rpartition("@")[2]})
    return True


def create_person(session: Session, actor: User | None, record: StaffRecord, *, via: str) -> User:
    """Add a person as the record describes: the same account creation (and audit) as an admin's invitation."""
    user = accounts.create_user(session, actor, email=record.email, display_name=record.display_name, roles=record.roles or set())
    set_staff_terms(session, actor, user, staff_type=record.staff_type or StaffType.EMPLOYEE, end_date=record.end_date, via=via)
    if record.external_id:
        user.external_id = record.external_id[:255]
    if record.active is False:
        accounts.deactivate_user(session, actor, user, reason=via)
    return user


def update_person(session: Session, actor: User | None, user: User, record: StaffRecord, *, via: str) -> list[str]:
    """Bring a person in line with the record; return the names of the fields that changed.

    ``active`` false runs the leaver flow (sessions ended), true reactivates: the same functions an
    admin's buttons call.
    """
    _keep_an_admin(session, user, roles=record.roles, active=record.active)
    changed: list[str] = []
    if record.email and change_email(session, actor, user, record.email, via=via):
        changed.append("email")
    if record.display_name and record.display_name.strip() != user.display_name:
        accounts.update_profile(session, actor, user, display_name=record.display_name)
        changed.append("name")
    if record.roles is not None and (record.roles | {Role.STAFF}) != user.roles:
        accounts.set_roles(session, actor, user, record.roles)
        changed.append("roles")
    if record.staff_type is not None or record.end_date_given:
        changed += set_staff_terms(
            session,
            actor,
            user,
            staff_type=record.staff_type or StaffType(user.staff_type),
            end_date=record.end_date if record.end_date_given else user.end_date,
            via=via,
        )
    if record.external_id is not None and record.external_id[:255] != (user.external_id or ""):
        user.external_id = record.external_id[:255] or None
        changed.append("external_id")
    if record.active is False and user.is_active_account:
        accounts.deactivate_user(session, actor, user, reason=via)
        changed.append("active")
    elif record.active is True and not user.is_active_account:
        accounts.reactivate_user(session, actor, user)
        changed.append("active")
    session.flush()
    return changed


def set_role_members(session: Session, role: Role, user: User, member: bool, *, via: str) -> bool:
    """Give or take one role (a SCIM group membership). Staff is everyone's and cannot be taken."""
    if role == Role.STAFF:
        if not member:
            raise ValidationFailed(
                "Everyone is staff.", {"members": ["Everyone in Lanyard is in the Staff group; deactivate the person instead."]}
            )
        return False
    roles = set(user.roles)
    if (role in roles) == member:
        return False
    roles = roles | {role} if member else roles - {role}
    _keep_an_admin(session, user, roles=roles, active=None)
    accounts.set_roles(session, None, user, roles)
    return True
