"""The school's policy: publishing a version, each person's acceptance, reminders, the "no phone" declaration.

A person accepts the current version once (the sign-in gate in ``app.policy.gate`` sends them to it);
publishing a new version asks everyone again. Nothing here reads the request or the signed-in person:
callers pass the actor. Every change is audited in the caller's transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from app.clock import local_today, to_local
from app.models import NoDeviceDeclaration, PolicyAcceptance, PolicyVersion, Role, User
from app.services.accounts import users_with_role
from app.services.audit import record_audit_event
from app.services.errors import NotFound, ValidationFailed
from app.services.notifications import notify
from app.services.personal_data import register_section
from app.services.settings import define_setting, get_setting

# Under the server's 2 MB request limit (MAX_CONTENT_LENGTH), with room for the form around it.
MAX_PDF_BYTES = 1536 * 1024
MAX_TEXT = 200_000
REVIEW_NOTICE_DAYS = define_setting(
    "policy.review_notice_days", 30, "Days before the policy's review date that the reminder goes out"
)


@dataclass(frozen=True)
class PolicyDraft:
    label: str
    title: str
    body: str
    pdf: bytes
    review_date: date | None


def is_pdf(data: bytes) -> bool:
    """A PDF by its own bytes (the header and the end-of-file marker), never by its name or stated type."""
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]


def _draft_errors(draft: PolicyDraft, today: date) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not draft.label.strip() or len(draft.label.strip()) > 80:
        errors["label"] = ["Enter a version of at most 80 characters, like 2026 or v3 (September 2026)."]
    if not draft.title.strip() or len(draft.title.strip()) > 200:
        errors["title"] = ["Enter the policy's title, like Social Networking Policy (at most 200 characters)."]
    if draft.review_date is None:
        errors["review_date"] = ["Enter the review date as DD/MM/YYYY."]
    elif draft.review_date <= today:
        errors["review_date"] = ["The review date must be in the future."]
    if len(draft.body) > MAX_TEXT:
        errors["body"] = [f"The text is over {MAX_TEXT:,} characters: upload it as a PDF instead."]
    if draft.pdf:
        if len(draft.pdf) > MAX_PDF_BYTES:
            errors["pdf"] = ["The file is over 1.5 MB: save a smaller PDF (text only, or lower-resolution images)."]
        elif not is_pdf(draft.pdf):
            errors["pdf"] = ["The file is not a PDF."]
    if not draft.body.strip() and not draft.pdf:
        errors["body"] = ["Paste the policy's text, or upload it as a PDF."]
    return errors


def publish_policy(session, actor: User, draft: PolicyDraft, today: date | None = None) -> PolicyVersion:
    """Publish a new current version (text and/or PDF): everyone is asked to accept it at their next visit."""
    errors = _draft_errors(draft, today or local_today())
    if errors:
        raise ValidationFailed("The policy needs correcting.", errors)
    version = PolicyVersion(
        label=draft.label.strip(),
        title=draft.title.strip(),
        body=draft.body.strip().replace("\r\n", "\n"),
        pdf_data=draft.pdf or None,
        pdf_digest=hashlib.sha256(draft.pdf).hexdigest() if draft.pdf else None,
        review_date=draft.review_date,
        published_by_id=actor.id,
    )
    session.add(version)
    session.flush()
    record_audit_event(
        session,
        actor,
        "policy.published",
        "policy_version",
        version.id,
        {"label": version.label, "review_date": version.review_date.isoformat(), "pdf": version.has_pdf},
    )
    return version


def current_policy(session) -> PolicyVersion | None:
    return session.scalar(sa.select(PolicyVersion).order_by(PolicyVersion.id.desc()).limit(1))


def current_policy_id(session) -> int | None:
    return session.scalar(sa.select(sa.func.max(PolicyVersion.id)))


def policy_version(session, policy_id: int) -> PolicyVersion:
    version = session.get(PolicyVersion, policy_id)
    if version is None:
        raise NotFound("There is no such version of the policy.")
    return version


def has_accepted(session, user: User, policy_id: int) -> bool:
    return (
        session.scalar(
            sa.select(PolicyAcceptance.id).where(PolicyAcceptance.policy_id == policy_id, PolicyAcceptance.user_id == user.id)
        )
        is not None
    )


def acceptance_of(session, user: User, policy_id: int) -> PolicyAcceptance | None:
    return session.scalar(
        sa.select(PolicyAcceptance).where(PolicyAcceptance.policy_id == policy_id, PolicyAcceptance.user_id == user.id)
    )


def accept_policy(session, actor: User, policy_id: int) -> PolicyAcceptance:
    """Record that ``actor`` accepts the current version (once: a second acceptance changes nothing)."""
    if policy_id != current_policy_id(session):
        raise ValidationFailed(
            "A newer version of the policy has been published: read it, then accept that one.",
            {"policy": ["This is no longer the current version."]},
        )
    existing = acceptance_of(session, actor, policy_id)
    if existing is not None:
        return existing
    acceptance = PolicyAcceptance(policy_id=policy_id, user_id=actor.id)
    session.add(acceptance)
    session.flush()
    version = session.get(PolicyVersion, policy_id)
    record_audit_event(session, actor, "policy.accepted", "policy_version", policy_id, {"label": version.label})
    return acceptance


def acceptances_of(session, user: User) -> list[PolicyAcceptance]:
    """Every version the person has accepted, oldest first (their "My data")."""
    return list(
        session.scalars(sa.select(PolicyAcceptance).where(PolicyAcceptance.user_id == user.id).order_by(PolicyAcceptance.id))
    )


def people_not_accepted(session, policy_id: int) -> list[User]:
    """Active people who have not accepted the version, by name."""
    accepted = sa.select(PolicyAcceptance.user_id).where(PolicyAcceptance.policy_id == policy_id)
    return list(
        session.scalars(
            sa.select(User).where(User.is_active_account.is_(True), User.id.not_in(accepted)).order_by(User.display_name)
        )
    )


def acceptances(session, policy_id: int) -> list[PolicyAcceptance]:
    return list(
        session.scalars(
            sa.select(PolicyAcceptance).where(PolicyAcceptance.policy_id == policy_id).order_by(PolicyAcceptance.accepted_at)
        )
    )


def _remind(session, people: list[User], version: PolicyVersion) -> int:
    notices = notify(
        session,
        people,
        kind="policy.reminder",
        title="Please read and accept the school's policy",
        body=f"{version.title} ({version.label}) is waiting for you in Lanyard.",
        url="/policy",
    )
    return len(notices)


def send_reminders(session, actor: User, policy_id: int, user_ids: set[int] | None = None) -> int:
    """Remind the people who have not accepted the version (all, or those named): push, and email when on."""
    version = policy_version(session, policy_id)
    people = [p for p in people_not_accepted(session, policy_id) if user_ids is None or p.id in user_ids]
    count = _remind(session, people, version)
    record_audit_event(
        session,
        actor,
        "policy.reminders_sent",
        "policy_version",
        version.id,
        {"count": count},
        related={"user": people[0].id if len(people) == 1 else None},
    )
    return count


def review_reminders(session, now: datetime) -> int:
    """Timed job: once per version, some days before its review date, remind the admins to review it and
    everyone who has not accepted it yet to do so."""
    version = current_policy(session)
    if version is None or version.review_reminder_sent_at is not None:
        return 0
    notice_days = get_setting(session, REVIEW_NOTICE_DAYS.key)
    if to_local(now).date() < version.review_date - timedelta(days=int(notice_days or 0)):
        return 0
    version.review_reminder_sent_at = now
    admins = users_with_role(session, Role.ADMIN)
    told = notify(
        session,
        admins,
        kind="policy.review_due",
        title="The school's policy is due for review",
        body=f"{version.title} ({version.label}) is due for review on {version.review_date:%d/%m/%Y}.",
        url="/admin/policy",
    )
    reminded = _remind(session, people_not_accepted(session, version.id), version)
    record_audit_event(
        session,
        None,
        "policy.review_reminder_sent",
        "policy_version",
        version.id,
        {"admins": len(told), "not_accepted": reminded, "review_date": version.review_date.isoformat()},
    )
    return len(told) + reminded


# The "no personal phone" declaration -----------------------------------------------------------------


def has_declared_no_device(session, user: User) -> bool:
    return session.get(NoDeviceDeclaration, user.id) is not None


def declare_no_device(session, actor: User) -> bool:
    """Record "I do not bring a personal phone or recording device to school"; False if it already stood."""
    if has_declared_no_device(session, actor):
        return False
    session.add(NoDeviceDeclaration(user_id=actor.id))
    session.flush()
    record_audit_event(session, actor, "device.none_declared", "user", actor.id)
    return True


def revoke_no_device_declaration(session, actor: User) -> bool:
    """Withdraw the declaration (the person now brings a device); False if there was none."""
    declaration = session.get(NoDeviceDeclaration, actor.id)
    if declaration is None:
        return False
    session.delete(declaration)
    session.flush()
    record_audit_event(session, actor, "device.none_declaration_withdrawn", "user", actor.id)
    return True


@register_section
def _policy_data(session, user: User) -> tuple[str, object]:
    declaration = session.get(NoDeviceDeclaration, user.id)
    return "policy", {
        "acceptances": [
            {"version": a.policy.label, "title": a.policy.title, "accepted_at": a.accepted_at.isoformat()}
            for a in acceptances_of(session, user)
        ],
        "no_personal_device_declared_at": declaration.declared_at.isoformat() if declaration else None,
    }
