"""People, their roles, their signed-in sessions and sign-in attempts."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.clock import utcnow
from app.database import UTCDateTime
from app.extensions import Model
from app.models.checks import enum_check


class Role(enum.StrEnum):
    STAFF = "staff"
    APPROVER = "approver"
    OFFICE = "office"
    ADMIN = "admin"
    GOVERNOR = "governor"

    @property
    def label(self) -> str:
        return {"staff": "Staff", "approver": "Approver", "office": "Office", "admin": "Admin", "governor": "Governor"}[
            self.value
        ]


class StaffType(enum.StrEnum):
    """How a person works at the school; volunteers, supply staff and contractors usually have an end date."""

    EMPLOYEE = "employee"
    SUPPLY = "supply"
    VOLUNTEER = "volunteer"
    CONTRACTOR = "contractor"

    @property
    def label(self) -> str:
        return {"employee": "Employee", "supply": "Supply staff", "volunteer": "Volunteer", "contractor": "Contractor"}[
            self.value
        ]


class User(Model):
    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint("staff_type IN ('employee', 'supply', 'volunteer', 'contractor')", name="known_staff_type"),
        # The device register's order (owner's name, then device): its first page without sorting them all.
        sa.Index("ix_users_display_name_id", "display_name", "id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(254), unique=True)
    display_name: so.Mapped[str] = so.mapped_column(sa.String(120))
    password_hash: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    is_active_account: so.Mapped[bool] = so.mapped_column(sa.Boolean, default=True)
    deactivated_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    staff_type: so.Mapped[str] = so.mapped_column(sa.String(20), default=StaffType.EMPLOYEE.value, server_default="employee")
    # The last day the person works here (a school date); the account deactivates itself after it.
    end_date: so.Mapped[date | None] = so.mapped_column(sa.Date)
    # The identity provider's own id for the person (SCIM externalId), kept as sent.
    external_id: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    # When the provisioning system deleted the person (SCIM DELETE): deactivated, and hidden from SCIM.
    deprovisioned_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    role_rows: so.Mapped[list[UserRole]] = so.relationship(back_populates="user", cascade="all, delete-orphan", lazy="selectin")

    @property
    def role_names(self) -> frozenset[str]:
        """The person's roles as stored strings.

        The signed-in person's are read with their session, in the same statement, and kept as
        ``_session_role_names`` (see ``accounts.live_session``) until ``role_rows`` itself is loaded
        (a change of roles loads it first), which then wins; otherwise ``role_rows`` is loaded as usual.
        """
        rows = self.__dict__.get("role_rows")
        if rows is None:
            known = self.__dict__.get("_session_role_names")
            if known is not None:
                return known
            rows = self.role_rows
        return frozenset(row.role for row in rows)

    def remember_session_roles(self, names: frozenset[str]) -> None:
        self.__dict__["_session_role_names"] = names

    def forget_session_roles(self) -> None:
        """Read the roles again from the database at the next question (a new transaction has begun)."""
        self.__dict__.pop("_session_role_names", None)

    @property
    def roles(self) -> set[Role]:
        return {Role(name) for name in self.role_names}

    def has_role(self, *roles: Role) -> bool:
        # Asked a few dozen times a page (navigation, templates): the stored strings compare equal to the
        # StrEnum members (and to the plain names templates pass), so no set of enums is built each time.
        names = self.role_names
        return any(role in names for role in roles)

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.is_active_account

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class UserRole(Model):
    __tablename__ = "user_roles"
    __table_args__ = (enum_check("role", Role, name="known_role"),)

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    role: so.Mapped[str] = so.mapped_column(sa.String(20), primary_key=True)

    user: so.Mapped[User] = so.relationship(back_populates="role_rows")


class UserSession(Model):
    """A signed-in browser. Ending the row ends the session at once, wherever the cookie is."""

    __tablename__ = "user_sessions"

    id: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    ended_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    ip: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    user_agent: so.Mapped[str | None] = so.mapped_column(sa.String(255))


class PasswordToken(Model):
    """A one-time link to set a password (invitation or reset); only its hash is stored."""

    __tablename__ = "password_tokens"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)


class LoginAttempt(Model):
    """Sign-in attempts keyed on account + IP, in the database so every worker sees the same count."""

    __tablename__ = "login_attempts"
    __table_args__ = (sa.Index("ix_login_attempts_key_time", "throttle_key", "attempted_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    throttle_key: so.Mapped[str] = so.mapped_column(sa.String(64))
    attempted_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    succeeded: so.Mapped[bool] = so.mapped_column(sa.Boolean, default=False)
