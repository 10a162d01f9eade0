"""The staff CSV import: a preview of what would change (new, changed, leaving), then an all-or-nothing apply.

Columns: name, email, roles, staff type, end date. Roles are separated by ``;`` or ``|`` (everyone is
staff); dates are DD/MM/YYYY or YYYY-MM-DD. The preview carries a digest of the file *and* of the plan
made from it; apply makes the plan again and refuses unless the digest is the same, so what is applied
is exactly what was previewed (the same file, and nobody changed the staff in between).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from app.clock import local_today
from app.models import Role, StaffType, User
from app.services import accounts
from app.services.audit import record_audit_event
from app.services.csv_safe import csv_lines
from app.services.csv_upload import RowProblem, file_problem, read_table, refused_message
from app.services.errors import Conflict, ValidationFailed
from app.services.provisioning import StaffRecord, create_person, update_person
from app.services.staff_terms import parse_end_date, parse_staff_type

COLUMNS = ("name", "email", "roles", "staff_type", "end_date")
REQUIRED = ("name", "email")
MAX_BYTES = 1024 * 1024
MAX_ROWS = 5000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ROLE_NAMES = (
    {role.value: role for role in Role} | {f"{role.value}s": role for role in Role} | {role.label.lower(): role for role in Role}
)


class ImportRefused(ValidationFailed):
    """Nothing was changed; ``problems`` names each bad row."""

    def __init__(self, message: str, problems: list[RowProblem]) -> None:
        super().__init__(message, {"file": [str(problem) for problem in problems[:200]]})
        self.problems = problems


@dataclass
class PlannedPerson:
    row: int
    record: StaffRecord
    user: User | None = None
    fields: list[str] = field(default_factory=list)

    @property
    def existing(self) -> User:
        """The account a changed row updates (a plan's changed rows always have one)."""
        if self.user is None:
            raise ValueError(f"row {self.row} names no existing account")
        return self.user


@dataclass
class ImportPlan:
    new: list[PlannedPerson]
    changed: list[PlannedPerson]
    leaving: list[User]
    unchanged: int
    digest: str

    @property
    def nothing_to_do(self) -> bool:
        return not (self.new or self.changed or self.leaving)


def _header_name(text: str | None) -> str:
    return (text or "").strip().lower().replace(" ", "_")


def _roles(text: str) -> tuple[set[Role], list[str]]:
    roles: set[Role] = set()
    unknown: list[str] = []
    for part in text.replace("|", ";").split(";"):
        name = part.strip().lower()
        if not name:
            continue
        if name in _ROLE_NAMES:
            roles.add(_ROLE_NAMES[name])
        else:
            unknown.append(part.strip()[:40])
    return roles, unknown


def _check_row(index: int, row: dict[str, str], today: date) -> tuple[StaffRecord | None, list[str]]:
    messages: list[str] = []
    name, email = row.get("name", ""), accounts.normalise_email(row.get("email", ""))
    if not name:
        messages.append("name: write the name colleagues know them by.")
    elif len(name) > 120:
        messages.append("name: use at most 120 characters.")
    elif name.startswith(_FORMULA_START):
        messages.append("name: a name cannot start with = + - or @ (spreadsheets would run it as a formula).")
    if "@" not in email or len(email) > 254 or email.startswith(_FORMULA_START) or " " in email:
        messages.append("email: write a school email address, like a.patel@school.org.uk.")
    roles, unknown = _roles(row.get("roles", ""))
    if unknown:
        messages.append(
            f"roles: unknown {', '.join(unknown)} (use staff, approver, office, admin, governor separated by ; or |)."
        )
    staff_type = parse_staff_type(row.get("staff_type", ""))
    if staff_type is None:
        messages.append(f"staff type: write {', '.join(t.value for t in StaffType)}, or leave it blank for employee.")
    end_date = None
    try:
        end_date = parse_end_date(row.get("end_date", ""))
    except ValueError as error:
        messages.append(f"end date: {error}")
    if end_date is not None and end_date < today:
        messages.append(
            "end date: that day has passed; leave the person out of the file (and tick 'deactivate those not in the file') to end their access."
        )
    if messages:
        return None, messages
    return StaffRecord(
        email=email,
        display_name=name,
        roles=roles - {Role.STAFF},
        staff_type=staff_type,
        end_date=end_date,
        end_date_given=True,
        active=True,
    ), []


def _differences(user: User, record: StaffRecord) -> list[str]:
    fields = []
    if user.display_name != record.display_name:
        fields.append("name")
    if user.roles != (record.roles or set()) | {Role.STAFF}:
        fields.append("roles")
    if user.staff_type != (record.staff_type or StaffType.EMPLOYEE).value:
        fields.append("staff_type")
    if user.end_date != record.end_date:
        fields.append("end_date")
    if not user.is_active_account:
        fields.append("reactivated")
    return fields


def _digest(text: str, plan: ImportPlan) -> str:
    summary = {
        "new": [p.record.email for p in plan.new],
        "changed": [[p.existing.id, p.fields] for p in plan.changed],
        "leaving": [user.id for user in plan.leaving],
    }
    hashed = hashlib.sha256(text.encode())
    hashed.update(json.dumps(summary, sort_keys=True).encode())
    return hashed.hexdigest()


def plan_import(session, actor: User, text: str) -> ImportPlan:
    """Read the file and say what it would change, changing nothing. Bad rows refuse the whole file."""
    # One kind of line ending: a browser sends the previewed text back with CRLF line breaks.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text.encode()) > MAX_BYTES:
        raise ImportRefused("The file is too large.", [RowProblem(1, "", (f"Import at most {MAX_BYTES // 1024} KB at a time.",))])
    table = read_table(text, MAX_ROWS, _header_name)
    whole_file = file_problem(
        table,
        required=REQUIRED,
        allowed=COLUMNS,
        allowed_label="name, email, roles, staff type, end date",
        max_rows=MAX_ROWS,
        nobody="The file has a header but nobody in it.",
        too_many=f"Import at most {MAX_ROWS} people at a time.",
    )
    problems: list[RowProblem] = [whole_file] if whole_file is not None else []
    rows = table.rows
    records: list[tuple[int, StaffRecord]] = []
    if not problems:
        today = local_today()
        seen: dict[str, int] = {}
        for index, row in enumerate(rows, start=2):
            record, messages = _check_row(index, row, today)
            email = accounts.normalise_email(row.get("email", ""))[:80]
            if record is not None and record.email in seen:
                messages = [f"email: {record.email} is also on row {seen[record.email]}."]
                record = None
            if record is None:
                problems.append(RowProblem(index, email if not email.startswith(_FORMULA_START) else "", tuple(messages)))
            else:
                seen[record.email] = index
                records.append((index, record))
    if problems:
        raise ImportRefused(refused_message(problems), problems)
    existing = {
        user.email: user
        for user in session.scalars(sa.select(User).where(User.email.in_([record.email for _row, record in records])))
    }
    plan = ImportPlan(new=[], changed=[], leaving=[], unchanged=0, digest="")
    for index, record in records:
        user = existing.get(record.email)
        if user is None:
            plan.new.append(PlannedPerson(index, record))
        elif fields := _differences(user, record):
            plan.changed.append(PlannedPerson(index, record, user, fields))
        else:
            plan.unchanged += 1
    plan.leaving = list(
        session.scalars(
            sa.select(User)
            .where(User.is_active_account.is_(True), User.email.not_in(list(seen)), User.id != actor.id)
            .order_by(User.display_name, User.id)
        )
    )
    plan.digest = _digest(text, plan)
    return plan


@dataclass(frozen=True)
class ImportResult:
    created: list[tuple[User, str]]  # each new person and their invitation token
    changed: int
    deactivated: int


def apply_import(session, actor: User, text: str, digest: str, *, deactivate_missing: bool) -> ImportResult:
    """Apply exactly the previewed plan in the caller's transaction, or refuse (a different file, or staff changed since)."""
    plan = plan_import(session, actor, text)
    if not digest or plan.digest != digest:
        raise Conflict("The file or Lanyard's staff list changed since the preview. Nothing was changed: preview the file again.")
    created: list[tuple[User, str]] = []
    for planned in plan.new:
        user = create_person(session, actor, planned.record, via="csv")
        # The invitation, as an admin's invite makes it (the email outbox sends it when it is configured).
        token = accounts.issue_password_token(session, actor, user)
        record_audit_event(session, actor, "user.imported", "user", user.id, {"change": "new", "row": planned.row})
        created.append((user, token))
    for planned in plan.changed:
        fields = update_person(session, actor, planned.existing, planned.record, via="csv")
        record_audit_event(
            session,
            actor,
            "user.imported",
            "user",
            planned.existing.id,
            {"change": "changed", "row": planned.row, "fields": fields},
        )
    deactivated = 0
    if deactivate_missing:
        for user in plan.leaving:
            update_person(session, actor, user, StaffRecord(email="", display_name="", active=False), via="csv")
            record_audit_event(session, actor, "user.imported", "user", user.id, {"change": "leaving"})
            deactivated += 1
    record_audit_event(
        session,
        actor,
        "staff.imported",
        "",
        "",
        {
            "new": len(plan.new),
            "changed": len(plan.changed),
            "deactivated": deactivated,
            "left_active": len(plan.leaving) - deactivated,
            "digest": digest[:16],
        },
    )
    return ImportResult(created, len(plan.changed), deactivated)


def import_template() -> Iterator[str]:
    return csv_lines(
        ("name", "email", "roles", "staff type", "end date"),
        [
            ("Mrs A Patel", "a.patel@school.org.uk", "approver", "employee", ""),
            ("Mr B Clarke", "b.clarke@school.org.uk", "office;admin", "employee", ""),
            ("Ms C Davies", "c.davies@school.org.uk", "", "volunteer", "31/07/2026"),
        ],
    )
