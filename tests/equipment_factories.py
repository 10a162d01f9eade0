"""Build school assets and loans for tests through the real services."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from app.clock import local_today
from app.database import write_intent
from app.extensions import db
from app.models import Loan, SchoolAsset, User
from app.services import assets, loans

_numbers = itertools.count(1)


def make_asset(office: User, **overrides) -> SchoolAsset:
    n = next(_numbers)
    details = assets.AssetDetails(
        tag=overrides.pop("tag", f"CAM-{n:04d}"),
        name=overrides.pop("name", f"Camera {n}"),
        kind=overrides.pop("kind", "camera"),
        **overrides,
    )
    with write_intent():
        asset = assets.create_asset(db.session, office, details)
        db.session.commit()
    return asset


def lend(office: User, asset: SchoolAsset, borrower: User, due_on: date | None = None, **extra) -> Loan:
    with write_intent():
        loan = loans.check_out(
            db.session,
            office,
            asset.id,
            borrower_id=borrower.id,
            due_on=due_on or local_today() + timedelta(days=7),
            **extra,
        )
        db.session.commit()
    return loan


def api_headers(client) -> dict:
    from tests.conftest import csrf_token

    return {"X-CSRFToken": csrf_token(client, "/"), "Accept": "application/json"}
