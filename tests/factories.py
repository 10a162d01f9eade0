"""Build people and devices for tests through the real services."""

from __future__ import annotations

import itertools

from stdnum import luhn

from app.database import write_intent
from app.extensions import db
from app.models import Role, User
from app.services import accounts, devices

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


def make_imei(n: int | None = None) -> str:
    n = next(_counter) if n is None else n
    body = "35" + str(100_000_000_000 + n * 7919).zfill(12)[-12:]
    return body + luhn.calc_check_digit(body)


def make_user(*roles: Role, name: str | None = None, email: str | None = None, password: str = PASSWORD) -> User:
    n = next(_counter)
    with write_intent():
        user = accounts.create_user(
            db.session,
            None,
            email=email or f"person{n}@school.test",
            display_name=name or f"Person {n}",
            roles=set(roles),
            password=password,
        )
        db.session.commit()
    return user


def make_device(owner: User, **overrides) -> devices.PersonalDevice:
    details = devices.DeviceDetails(
        kind=overrides.pop("kind", "smartphone"),
        make=overrides.pop("make", "Apple"),
        model=overrides.pop("model", "iPhone 13"),
        imei1=overrides.pop("imei1", make_imei()),
        **overrides,
    )
    with write_intent():
        device = devices.register_device(db.session, owner, details)
        db.session.commit()
    return device


def sign_in(client, user: User, password: str = PASSWORD):
    from tests.conftest import csrf_token

    token = csrf_token(client, "/sign-in")
    response = client.post("/sign-in", data={"email": user.email, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response
