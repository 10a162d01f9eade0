"""A demo school for the first run: people with roles, devices, and whatever each feature adds."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session
from stdnum import luhn

from app import clock
from app.models import Role, User
from app.services import accounts, devices

Seeder = Callable[[Session, dict[str, User]], None]
_seeders: list[tuple[int, Seeder]] = []

DEMO_DOMAIN = "demo.lanyard.school"
DEMO_PEOPLE: tuple[tuple[str, str, set[Role]], ...] = (
    ("head", "Mrs A Adeyemi", {Role.APPROVER}),
    ("deputy", "Mr D Okafor", {Role.APPROVER}),
    ("office", "Ms O Brennan", {Role.OFFICE}),
    ("admin", "Mr T Hughes", {Role.ADMIN}),
    ("bclarke", "Mr B Clarke", set()),
    ("cdavies", "Miss C Davies", set()),
    ("eevans", "Mrs E Evans", set()),
    ("governor", "Dr G Fraser", {Role.GOVERNOR}),
)


def demo_seeder(order: int) -> Callable[[Seeder], Seeder]:
    """Register a function that adds a feature's demo data; it receives the people by short name."""

    def register(seeder: Seeder) -> Seeder:
        _seeders.append((order, seeder))
        return seeder

    return register


@contextmanager
def backdated(days: float) -> Iterator[None]:
    """Run demo steps as if ``days`` ago, through the same services (and audit events) as real use."""
    real_now = clock.utcnow()
    previous_source = clock._source
    clock.set_source(lambda: real_now - timedelta(days=days))
    try:
        yield
    finally:
        clock.set_source(previous_source)


def demo_imei(seed: str) -> str:
    body = "35" + str(int(hashlib.sha256(seed.encode()).hexdigest(), 16) % 10**12).zfill(12)
    return body + luhn.calc_check_digit(body)


def _credentials_file(instance_path: Path) -> Path:
    return instance_path / "demo-credentials.txt"


def demo_password(instance_path: Path) -> str:
    """One random password for every demo account, kept in the instance folder (never in git)."""
    path = _credentials_file(instance_path)
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    password = "-".join(secrets.token_hex(3) for _ in range(3))
    path.write_text(password)
    path.chmod(0o600)
    return password


def seed_demo_school(session: Session, password: str) -> dict[str, User] | None:
    """Create the demo school unless it exists. Returns the people created, or None if already there."""
    if accounts.find_user_by_email(session, f"head@{DEMO_DOMAIN}") is not None:
        return None
    people: dict[str, User] = {}
    for short, name, roles in DEMO_PEOPLE:
        people[short] = accounts.create_user(
            session, None, email=f"{short}@{DEMO_DOMAIN}", display_name=name, roles=roles, password=password
        )
    for short, make, model in (
        ("bclarke", "Apple", "iPhone 13"),
        ("cdavies", "Samsung", "Galaxy A54"),
        ("eevans", "Google", "Pixel 8"),
        ("head", "Apple", "iPhone 15"),
    ):
        devices.register_device(
            session,
            people[short],
            devices.DeviceDetails(kind="smartphone", make=make, model=model, imei1=demo_imei(short + model)),
        )
    for _order, seeder in sorted(_seeders, key=lambda item: item[0]):
        seeder(session, people)
    return people


def demo_sign_ins() -> list[tuple[str, str]]:
    return [(f"{short}@{DEMO_DOMAIN}", name) for short, name, _roles in DEMO_PEOPLE]
