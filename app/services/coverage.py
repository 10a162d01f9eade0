"""Who the policy does not yet cover: the head's and the office's list of what to chase.

Four lists, each of something a person can act on: people with no phone registered who have not
declared that they bring none, people who have not accepted the current policy, emergency overrides
waiting for review, and loans overdue.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app.models import DeviceStatus, Loan, NoDeviceDeclaration, PermissionRequest, PersonalDevice, PolicyVersion, User
from app.services import loans, policy
from app.services.audit import record_audit_event
from app.services.notifications import notify
from app.services.permissions import emergencies_to_review


@dataclass(frozen=True)
class Coverage:
    without_device: list[User]
    policy: PolicyVersion | None
    not_accepted: list[User]
    overrides_to_review: list[PermissionRequest]
    overdue_loans: list[Loan]

    @property
    def gaps(self) -> int:
        return len(self.without_device) + len(self.not_accepted) + len(self.overrides_to_review) + len(self.overdue_loans)


def people_without_device(session) -> list[User]:
    """Active people with no active personal device registered and no "I bring none" declaration."""
    with_device = sa.select(PersonalDevice.owner_id).where(PersonalDevice.status == DeviceStatus.ACTIVE.value)
    declared = sa.select(NoDeviceDeclaration.user_id)
    return list(
        session.scalars(
            sa.select(User)
            .where(User.is_active_account.is_(True), User.id.not_in(with_device), User.id.not_in(declared))
            .order_by(User.display_name)
        )
    )


def remind_to_register(session, actor: User, user_ids: set[int] | None = None) -> int:
    """Ask the people with no phone registered (all, or those named) to register theirs or to say they bring none."""
    people = [p for p in people_without_device(session) if user_ids is None or p.id in user_ids]
    notices = notify(
        session,
        people,
        kind="device.register_reminder",
        title="Please register your phone, or say you bring none",
        body="The school's policy asks everyone to keep a record of their phone's IMEI. Open My devices to add it, "
        "or to say that you do not bring a personal phone or recording device to school.",
        url="/devices",
    )
    record_audit_event(
        session,
        actor,
        "device.register_reminders_sent",
        "user",
        people[0].id if len(people) == 1 else "",
        {"count": len(notices)},
    )
    return len(notices)


def coverage(session) -> Coverage:
    current = policy.current_policy(session)
    return Coverage(
        without_device=people_without_device(session),
        policy=current,
        not_accepted=policy.people_not_accepted(session, current.id) if current else [],
        overrides_to_review=emergencies_to_review(session),
        overdue_loans=loans.overdue_loans(session, limit=200),
    )
