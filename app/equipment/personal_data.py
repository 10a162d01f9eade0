"""A person's loans in their "My data" download."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.services.loans import loan_json, loans_of
from app.services.personal_data import register_section


@register_section
def loans_section(session: Session, user) -> tuple[str, object]:
    return "loans", [loan_json(loan) for loan in loans_of(session, user, limit=100_000)]
