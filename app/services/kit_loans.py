"""Lending a kit in one go (issue 17, item 2): every member of an iPad trolley to one borrower, and back.

Check-out makes one loan per member, all or nothing, with one due date and the school's terms kept with
each loan (accepted at the office, or on the borrower's phone with one tap for the whole kit). Check-in
takes back what came back and names what did not ("2 of 30 not returned: IPAD-07, IPAD-19"); a missing
member stays on loan, due today, so the overdue reminders chase it from tomorrow.

Lock order (CONTRIBUTING): the member assets in id order, then the audit append lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clock import format_date, local_today, utcnow
from app.models import AssetStatus, Kit, KitMember, Loan, SchoolAsset, User
from app.services import loans
from app.services.assets import require_office
from app.services.audit import record_audit_event
from app.services.bookings import get_kit, kit_of_asset, refuse_lending_over_a_booking
from app.services.errors import Conflict, ValidationFailed
from app.services.notifications import notify
from app.services.school_settings import loan_terms

SHOWN_TAGS = 10  # tags named in one line before "and N more"


def member_assets(session: Session, kit_id: int, *, lock: bool = False) -> list[SchoolAsset]:
    """The kit's assets in id order (the lock order), row-locked on PostgreSQL when ``lock``."""
    query = (
        sa.select(SchoolAsset)
        .join(KitMember, KitMember.asset_id == SchoolAsset.id)
        .where(KitMember.kit_id == kit_id)
        .order_by(SchoolAsset.id)
    )
    if lock:
        query = query.with_for_update(of=SchoolAsset).execution_options(populate_existing=True)
    return list(session.scalars(query))


def open_loans_of(session: Session, asset_ids: Iterable[int]) -> dict[int, Loan]:
    """The open loan of each of these assets that has one, in one query."""
    ids = list(asset_ids)
    if not ids:
        return {}
    found = session.scalars(sa.select(Loan).where(Loan.asset_id.in_(ids), Loan.returned_at.is_(None)))
    return {loan.asset_id: loan for loan in found}


def tag_line(tags: list[str]) -> str:
    """IPAD-07, IPAD-19 (and at most ten, then "and 3 more")."""
    shown = ", ".join(tags[:SHOWN_TAGS])
    return shown + (f" and {len(tags) - SHOWN_TAGS} more" if len(tags) > SHOWN_TAGS else "")


@dataclass
class MemberState:
    asset: SchoolAsset
    loan: Loan | None


def kit_state(session: Session, kit: Kit) -> list[MemberState]:
    """Each member and its open loan, for the kit's scanned page (two queries, however many members)."""
    members = member_assets(session, kit.id)
    open_loans = open_loans_of(session, (a.id for a in members))
    return [MemberState(asset, open_loans.get(asset.id)) for asset in members]


# Lending --------------------------------------------------------------------------------------------


def _unlendable(members: list[SchoolAsset], open_loans: Mapping[int, Loan]) -> list[str]:
    reasons = []
    for asset in members:
        if asset.id in open_loans:
            reasons.append(f"{asset.tag} is on loan to {open_loans[asset.id].borrower.display_name}")
        elif asset.status in loans.NOT_LENDABLE:
            reasons.append(f"{asset.tag} {loans.NOT_LENDABLE[asset.status]}")
    return reasons


def _borrower(session: Session, borrower_id: int | None) -> User | None:
    """The same rule as a single loan: any active account may borrow."""
    user = session.get(User, borrower_id) if borrower_id else None
    return user if user is not None and user.is_active_account else None


def _check_details(session: Session, borrower: User | None, due_on: date | None, purpose: str, condition: str) -> None:
    errors: dict[str, list[str]] = {}
    today = local_today()
    if borrower is None:
        errors["borrower_id"] = ["Choose who is borrowing it."]
    if due_on is None:
        errors["due_on"] = [loans.due_date_example(session)]
    elif due_on < today:
        errors["due_on"] = [f"The due date must be today ({format_date(today)}) or later."]
    elif due_on > today + loans.LONGEST_LOAN:
        errors["due_on"] = ["A loan can last at most a year; choose an earlier due date."]
    if len(purpose.strip()) > 200:
        errors["purpose"] = ["Use at most 200 characters."]
    if len(condition.strip()) > 500:
        errors["condition"] = ["Use at most 500 characters."]
    if errors:
        raise ValidationFailed("Some details need correcting.", errors)


@dataclass(frozen=True)
class Lending:
    """What to lend and on what terms (the same for every asset lent together)."""

    borrower: User
    due_on: date
    purpose: str = ""
    condition: str = ""
    accepted_in_person: bool = False


def lend_assets(session: Session, actor: User, members: list[SchoolAsset], lending: Lending) -> list[Loan]:
    """One loan per asset, all or nothing: the assets must already be locked (in id order) by the caller.
    Every loan has the same out time, so the borrower's one tap accepts the terms for all of them.
    The caller audits (one event for the whole lending) and asks for the terms."""
    open_loans = open_loans_of(session, (a.id for a in members))
    refused = _unlendable(members, open_loans)
    if refused:
        raise Conflict(
            f"Nothing was lent: {'; '.join(refused[:SHOWN_TAGS])}{'.' if len(refused) <= SHOWN_TAGS else ' and more.'}"
        )
    now, terms = utcnow(), loan_terms(session)
    made = [
        Loan(
            asset_id=asset.id,
            borrower_id=lending.borrower.id,
            issued_by_id=actor.id,
            out_at=now,
            due_on=lending.due_on,
            purpose=lending.purpose.strip(),
            condition_out=lending.condition.strip(),
            terms_text=terms,
            terms_accepted_at=now if lending.accepted_in_person else None,
            terms_accepted_via=loans.TERMS_IN_PERSON if lending.accepted_in_person else None,
            terms_recorded_by_id=actor.id if lending.accepted_in_person else None,
        )
        for asset in members
    ]
    try:
        with session.begin_nested():
            session.add_all(made)
            for asset in members:
                asset.status = AssetStatus.ON_LOAN.value
            session.flush()
    except IntegrityError as error:
        raise Conflict("Part of it has just been lent by someone else. Reload the page to see who has it.") from error
    return made


def ask_for_terms(session: Session, loans_made: list[Loan], what: str) -> None:
    """Send the borrower one notice to accept the terms for everything lent together."""
    first = loans_made[0]
    notify(
        session,
        [first.borrower],
        kind="loan.terms",
        title=f"Please accept the terms for {what}",
        body=f"It is lent to you until {format_date(first.due_on)}. Read the school's terms and tap I accept.",
        url=loans.terms_url(first),
        extra={"kind": "loan.terms", "loan_id": first.id},
    )


def check_out_kit(
    session: Session,
    actor: User,
    kit_id: int,
    *,
    borrower_id: int | None,
    due_on: date | None,
    purpose: str = "",
    condition: str = "",
    accepted_in_person: bool = False,
) -> list[Loan]:
    """Lend every member of a kit to one person until a school date, all or nothing."""
    require_office(actor)
    kit = get_kit(session, kit_id)
    members = member_assets(session, kit.id, lock=True)
    borrower = _borrower(session, borrower_id)
    _check_details(session, borrower, due_on, purpose, condition)
    if borrower is None or due_on is None:  # _check_details has refused these already
        raise ValidationFailed("Some details need correcting.", {})
    if kit.is_retired:
        raise Conflict(f"{kit.name} is retired, so it cannot be lent.")
    if not members:
        raise Conflict(f"{kit.name} has no equipment in it yet. Add its members first.")
    refuse_lending_over_a_booking(session, members, borrower.id, due_on)
    made = lend_assets(session, actor, members, Lending(borrower, due_on, purpose, condition, accepted_in_person))
    record_audit_event(
        session,
        actor,
        "kit.checked_out",
        "kit",
        kit.id,
        {
            "tag": kit.tag,
            "thing": f"{kit.name} ({kit.tag})",
            "borrower_id": borrower.id,
            "due_on": due_on.isoformat(),
            "count": len(made),
            "loan_ids": [loan.id for loan in made],
            "terms": loans.TERMS_IN_PERSON if accepted_in_person else "asked",
        },
        related={"user": borrower.id},
    )
    if not accepted_in_person:
        ask_for_terms(session, made, f"{kit.name} ({kit.tag}, {len(made)} items)")
    return made


# Taking back -----------------------------------------------------------------------------------------


@dataclass
class KitReturn:
    kit: Kit
    returned: list[Loan] = field(default_factory=list)
    missing: list[Loan] = field(default_factory=list)

    @property
    def out_count(self) -> int:
        return len(self.returned) + len(self.missing)

    @property
    def summary(self) -> str:
        """ "28 of 30 back." and, when something is missing, "2 of 30 not returned: IPAD-07, IPAD-19"."""
        if not self.missing:
            return f"All {self.out_count} back."
        tags = tag_line([loan.asset.tag for loan in self.missing])
        return f"{len(self.missing)} of {self.out_count} not returned: {tags}"


def check_in_kit(
    session: Session,
    actor: User,
    kit_id: int,
    *,
    returned_ids: Iterable[int],
    conditions: Mapping[int, str] | None = None,
    damaged_ids: Iterable[int] = (),
) -> KitReturn:
    """Take back the members that came back (``returned_ids``); the rest stay on loan, due today at the
    latest, and are named in the summary and the audit log."""
    require_office(actor)
    kit = get_kit(session, kit_id)
    members = member_assets(session, kit.id, lock=True)
    open_loans = open_loans_of(session, (a.id for a in members))
    if not open_loans:
        raise Conflict(f"Nothing in {kit.name} is on loan, so there is nothing to check in.")
    back, damaged, conditions = set(returned_ids), set(damaged_ids), dict(conditions or {})
    too_long = [a.tag for a in members if len((conditions.get(a.id) or "").strip()) > 500]
    if too_long:
        raise ValidationFailed(
            "Some details need correcting.", {"condition": [f"Use at most 500 characters ({', '.join(too_long)})."]}
        )
    result, now, today = KitReturn(kit), utcnow(), local_today()
    for asset in members:
        loan = open_loans.get(asset.id)
        if loan is None:
            continue
        if asset.id not in back:
            loan.due_on = min(loan.due_on, today)  # chased by the overdue reminders from tomorrow
            result.missing.append(loan)
            continue
        loan.returned_at, loan.received_by_id = now, actor.id
        loan.condition_in = (conditions.get(asset.id) or "").strip()
        loan.damaged = asset.id in damaged
        asset.status = AssetStatus.IN_REPAIR.value if loan.damaged else AssetStatus.AVAILABLE.value
        result.returned.append(loan)
    session.flush()
    record_audit_event(
        session,
        actor,
        "kit.checked_in",
        "kit",
        kit.id,
        {
            "tag": kit.tag,
            "thing": f"{kit.name} ({kit.tag})",
            "returned": len(result.returned),
            "out": result.out_count,
            "missing_tags": [loan.asset.tag for loan in result.missing][:50],
            "damaged_tags": [loan.asset.tag for loan in result.returned if loan.damaged][:50],
            "loan_ids": [loan.id for loan in result.returned][:100],
        },
        related={"user": next(iter(open_loans.values())).borrower_id},
    )
    return result


# The borrower's terms, for everything lent together ---------------------------------------------------


def lent_together(session: Session, loan: Loan) -> list[Loan]:
    """The loans made with this one in one kit check-out or booking collection (same borrower, same out
    time, same issuer), still open and waiting for the terms; the loan itself first."""
    siblings = session.scalars(
        sa.select(Loan)
        .where(
            Loan.borrower_id == loan.borrower_id,
            Loan.issued_by_id == loan.issued_by_id,
            Loan.out_at == loan.out_at,
            Loan.returned_at.is_(None),
            Loan.terms_accepted_at.is_(None),
            Loan.id != loan.id,
        )
        .order_by(Loan.id)
    )
    return [loan, *siblings]


def accept_terms_together(session: Session, borrower: User, loan_id: int) -> list[Loan]:
    """The borrower's one tap: accept the terms for this loan and everything lent with it. One loan on
    its own is accepted exactly as before (``loans.accept_terms``)."""
    loan = loans.borrowers_loan(session, borrower, loan_id)
    together = lent_together(session, loan) if loan.terms_accepted_at is None and loan.returned_at is None else [loan]
    if len(together) == 1:
        loans.accept_terms(session, borrower, loan.id)
        return together
    now = utcnow()
    for each in together:
        each.terms_accepted_at, each.terms_accepted_via, each.terms_recorded_by_id = now, loans.TERMS_OWN_PHONE, borrower.id
    session.flush()
    kit = kit_of_asset(session, loan.asset_id)
    record_audit_event(
        session,
        borrower,
        "loan.terms_accepted_together",
        "kit" if kit is not None else "asset",
        kit.id if kit is not None else loan.asset_id,
        {"count": len(together), "loan_ids": [each.id for each in together][:100], "via": loans.TERMS_OWN_PHONE},
        related={"user": borrower.id},
    )
    return together
