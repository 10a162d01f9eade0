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


def page_csrf_token(client, path: str = "/") -> str:
    """The CSRF token of a page, as a browser would read it from the meta tag.

    The ``app`` fixture keeps one app context for the whole test, so ``g`` outlives each request and
    Flask-WTF would hand back the token it cached there before sign-in cleared the session; drop it first.
    """
    from flask import g

    from tests.conftest import csrf_token

    g.pop("csrf_token", None)
    return csrf_token(client, path)


def api_headers(client) -> dict:
    return {"X-CSRFToken": page_csrf_token(client), "Accept": "application/json"}
