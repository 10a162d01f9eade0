"""Device options: what a person may ask to take in. Other features add their own (school assets on loan)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import (
    DeviceKind,
    DeviceStatus,
    PermissionRequest,
    PersonalDevice,
    User,
)

# Device options: what a person may ask to take in. Other features add their own (school assets on loan).


@dataclass(frozen=True)
class DeviceOption:
    """One choice on the request form. ``key`` is what the form posts: ``personal-12``, ``asset-5``.

    ``label`` names the device (kept on the request); ``hint`` says whose it is on the form.
    """

    key: str
    label: str
    hint: str = ""
    personal_device_id: int | None = None
    asset_id: int | None = None
    school_device: bool = False


DeviceOptionProvider = Callable[[Session, User], Iterable[DeviceOption]]
_device_option_providers: list[DeviceOptionProvider] = []


def request_links(request: PermissionRequest) -> dict[str, object]:
    """What a request's audit events are about, for the audit log's person, device, asset and area filters."""
    return {
        "area": request.area_id,
        "user": request.requester_id,
        "personal_device": request.personal_device_id,
        "asset": request.asset_id,
    }


def register_device_option_provider(provider: DeviceOptionProvider) -> DeviceOptionProvider:
    """Let a feature offer more devices on the request form: ``provider(session, user)`` returns options.

    School-device options must set ``asset_id`` and ``school_device=True``; keys must be unique.
    Usable as a decorator.
    """
    if provider not in _device_option_providers:
        _device_option_providers.append(provider)
    return provider


# Plain columns: the form needs no IMEIs or owner. Built once, as this runs on every request at the door
# (SQLAlchemy works out a statement's cache key once per statement object).
_ACTIVE_DEVICES_OF = (
    sa.select(PersonalDevice.id, PersonalDevice.make, PersonalDevice.model, PersonalDevice.kind, PersonalDevice.description)
    .where(PersonalDevice.owner_id == sa.bindparam("owner_id"), PersonalDevice.status == DeviceStatus.ACTIVE.value)
    .order_by(PersonalDevice.created_at, PersonalDevice.id)
)


@register_device_option_provider
def personal_device_options(session: Session, user: User) -> list[DeviceOption]:
    """The person's own active devices."""
    rows = session.execute(_ACTIVE_DEVICES_OF, {"owner_id": user.id})
    return [
        DeviceOption(
            key=f"personal-{row.id}",
            label=f"{row.make} {row.model}".strip(),
            hint=f"your {DeviceKind(row.kind).label.lower()}" + (f", {row.description}" if row.description else ""),
            personal_device_id=row.id,
        )
        for row in rows
    ]


def device_options(session: Session, user: User) -> list[DeviceOption]:
    options: list[DeviceOption] = []
    for provider in _device_option_providers:
        options.extend(provider(session, user))
    return options
