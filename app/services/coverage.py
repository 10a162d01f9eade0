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


def coverage(session) -> Coverage:
    current = policy.current_policy(session)
    return Coverage(
        without_device=people_without_device(session),
        policy=current,
        not_accepted=policy.people_not_accepted(session, current.id) if current else [],
        overrides_to_review=emergencies_to_review(session),
        overdue_loans=loans.overdue_loans(session, limit=200),
    )
