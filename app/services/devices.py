"""The personal device register (journey J1)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager, joinedload, lazyload

from app.clock import utcnow
from app.models import AuditEvent, DeviceKind, DeviceStatus, PersonalDevice, RegisteredImei, Role, User
from app.services import text_search
from app.services.accounts import users_with_role
from app.services.audit import record_audit_event
from app.services.errors import AlreadyRegistered, Conflict, DuplicateImei, NotFound, ValidationFailed
from app.services.imei import ImeiError, last_four, normalise_imei
from app.services.notifications import notify

DUPLICATE_IMEI = (
    "This IMEI is already registered in Lanyard. If this phone has changed hands, or you think it is a "
    "mistake, ask the school office; they have been told about this attempt."
)


@dataclass
class DeviceDetails:
    kind: str
    make: str
    model: str
    description: str = ""
    serial: str = ""
    imei1: str = ""
    imei2: str = ""


def _validate(details: DeviceDetails) -> tuple[dict[str, list[str]], str | None, str | None]:
    errors: dict[str, list[str]] = {}
    if details.kind not in {k.value for k in DeviceKind}:
        errors["kind"] = ["Choose what kind of device this is."]
    if not details.make.strip():
        errors["make"] = ["Enter the make, like Apple or Samsung."]
    if not details.model.strip():
        errors["model"] = ["Enter the model, like iPhone 13 or Galaxy A54."]
    for field, limit in (("make", 60), ("model", 60), ("description", 200), ("serial", 60)):
        if len(getattr(details, field)) > limit:
            errors.setdefault(field, []).append(f"Use at most {limit} characters.")
    imei1 = imei2 = None
    needs_imei = details.kind == DeviceKind.SMARTPHONE.value
    if details.imei1.strip() or needs_imei:
        try:
            imei1 = normalise_imei(details.imei1)
        except ImeiError as error:
            errors["imei1"] = [str(error)]
    if details.imei2.strip():
        try:
            imei2 = normalise_imei(details.imei2)
        except ImeiError as error:
            errors["imei2"] = [str(error)]
        if imei2 is not None and imei1 is None and "imei1" not in errors:
            errors["imei1"] = ["Enter IMEI 1 before IMEI 2."]
    if imei1 and imei2 and imei1 == imei2:
        errors["imei2"] = ["IMEI 2 is the same as IMEI 1; a dual-SIM phone has two different IMEIs."]
    return errors, imei1, imei2


def _imeis_taken(session: Session, imeis: list[str], device_id: int | None) -> list[str]:
    query = sa.select(RegisteredImei.imei).where(RegisteredImei.imei.in_(imeis))
    if device_id is not None:
        # Rows held by school assets have no device_id: they are taken too.
        query = query.where(sa.or_(RegisteredImei.device_id.is_(None), RegisteredImei.device_id != device_id))
    return list(session.scalars(query))


def _refuse_own_again(session: Session, actor: User, taken: list[str]) -> None:
    """A second tap on "Register device": every IMEI taken is on one of the person's own active devices."""
    if not taken:
        return
    owners = session.execute(
        sa.select(RegisteredImei.imei, PersonalDevice.id)
        .join(PersonalDevice, PersonalDevice.id == RegisteredImei.device_id)
        .where(
            RegisteredImei.imei.in_(taken),
            PersonalDevice.owner_id == actor.id,
            PersonalDevice.status == DeviceStatus.ACTIVE.value,
        )
        .order_by(PersonalDevice.id)
    ).all()
    if {imei for imei, _ in owners} == set(taken):
        raise AlreadyRegistered("You have already registered this device.", owners[0][1])


def _refuse_duplicates(session: Session, actor: User, taken: list[str], slots: dict[str, str]) -> None:
    """Audit the attempt, tell the office, and refuse without saying whose phone it is."""
    record_audit_event(
        session,
        actor,
        "device.duplicate_imei_refused",
        "user",
        actor.id,
        {"imei_last4": sorted(last_four(i) for i in taken)},
    )
    notify(
        session,
        users_with_role(session, Role.OFFICE),
        kind="device.duplicate_imei",
        title="An IMEI already in the register was entered again",
        body=f"{actor.display_name} tried to register a device ending {', '.join(sorted(last_four(i) for i in taken))}.",
        url="/office/devices",
    )
    raise DuplicateImei(DUPLICATE_IMEI, {slots[imei]: [DUPLICATE_IMEI] for imei in taken})


def register_device(session: Session, actor: User, details: DeviceDetails) -> PersonalDevice:
    """Add a device to the actor's own register."""
    errors, imei1, imei2 = _validate(details)
    if errors:
        raise ValidationFailed("Some details need correcting.", errors)
    imeis = {imei: slot for imei, slot in ((imei1, "imei1"), (imei2, "imei2")) if imei}
    if taken := _imeis_taken(session, list(imeis), None):
        _refuse_own_again(session, actor, taken)
        _refuse_duplicates(session, actor, taken, imeis)
    device = PersonalDevice(
        owner_id=actor.id,
        kind=details.kind,
        make=details.make.strip(),
        model=details.model.strip(),
        description=details.description.strip(),
        serial=details.serial.strip(),
        status=DeviceStatus.ACTIVE.value,
    )
    device.imeis = [RegisteredImei(imei=imei, slot=1 if slot == "imei1" else 2) for imei, slot in imeis.items()]
    try:
        _flush_or_duplicate(session, device)
    except Conflict:
        # Two taps at once: the other request registered it while this one waited on the IMEI's row.
        _refuse_own_again(session, actor, _imeis_taken(session, list(imeis), None))
        raise
    record_audit_event(
        session,
        actor,
        "device.registered",
        "personal_device",
        device.id,
        {"kind": device.kind, "imei_last4": [last_four(i) for i in imeis]},
    )
    return device


def _flush_or_duplicate(session: Session, *new_rows) -> None:
    """The primary key on registered_imeis is the real guard; a race that slips past the check lands here.

    New rows are added inside the savepoint: opening a savepoint flushes what is pending, so rows
    added before it would hit the constraint outside the savepoint's protection.
    """
    try:
        with session.begin_nested():
            session.add_all(new_rows)
            session.flush()
    except IntegrityError as error:
        raise Conflict(DUPLICATE_IMEI, {"imei1": [DUPLICATE_IMEI]}) from error


def update_device(session: Session, actor: User, device: PersonalDevice, details: DeviceDetails) -> PersonalDevice:
    if device.status == DeviceStatus.RETIRED.value:
        raise Conflict("This device has been retired and can no longer be changed.")
    errors, imei1, imei2 = _validate(details)
    if errors:
        raise ValidationFailed("Some details need correcting.", errors)
    imeis = {imei: slot for imei, slot in ((imei1, "imei1"), (imei2, "imei2")) if imei}
    if taken := _imeis_taken(session, list(imeis), device.id):
        _refuse_duplicates(session, actor, taken, imeis)
    changed = [
        field
        for field in ("kind", "make", "model", "description", "serial")
        if getattr(device, field) != getattr(details, field).strip()
    ]
    for field in changed:
        setattr(device, field, getattr(details, field).strip())
    wanted = {1: imei1, 2: imei2}
    current = {row.slot: row for row in device.imeis}
    for slot, imei in wanted.items():
        row = current.get(slot)
        if row is not None and row.imei != imei:
            device.imeis.remove(row)
            session.flush()
            changed.append(f"imei{slot}")
            row = None
        if row is None and imei:
            device.imeis.append(RegisteredImei(imei=imei, slot=slot))
            if f"imei{slot}" not in changed:
                changed.append(f"imei{slot}")
    _flush_or_duplicate(session)
    if changed:
        device.updated_at = utcnow()
        record_audit_event(session, actor, "device.updated", "personal_device", device.id, {"fields": sorted(changed)})
    return device


def retire_device(session: Session, actor: User, device: PersonalDevice) -> None:
    """The owner no longer brings it to school. The record stays for the audit trail."""
    if device.status == DeviceStatus.RETIRED.value:
        return
    previous = device.status
    device.status = DeviceStatus.RETIRED.value
    record_audit_event(session, actor, "device.retired", "personal_device", device.id, {"previous_status": previous})


def report_lost(
    session: Session, actor: User, device: PersonalDevice, *, stolen: bool, crime_reference: str = "", notes: str = ""
) -> PersonalDevice:
    """Record a lost or stolen phone and tell the office in the app."""
    if device.status == DeviceStatus.RETIRED.value:
        raise Conflict("This device has been retired; it cannot be reported lost.")
    if len(crime_reference) > 60 or len(notes) > 500:
        raise ValidationFailed(
            "Some details are too long.",
            {
                k: ["That is too long."]
                for k, v in (("crime_reference", crime_reference), ("notes", notes))
                if len(v) > {"crime_reference": 60, "notes": 500}[k]
            },
        )
    device.status = (DeviceStatus.STOLEN if stolen else DeviceStatus.LOST).value
    device.reported_at = utcnow()
    device.crime_reference = crime_reference.strip()
    device.loss_notes = notes.strip()
    record_audit_event(
        session,
        actor,
        "device.reported_stolen" if stolen else "device.reported_lost",
        "personal_device",
        device.id,
        {"crime_reference_given": bool(device.crime_reference), "imei_last4": [last_four(r.imei) for r in device.imeis]},
    )
    notify(
        session,
        users_with_role(session, Role.OFFICE),
        kind="device.reported_lost",
        title=f"{device.owner.display_name} reported a {device.kind_label.lower()} {device.status}",
        body=f"{device.name}, IMEI ending {last_four(device.imei1)}." if device.imei1 else device.name,
        url=f"/office/devices/{device.id}",
    )
    return device


def mark_found(session: Session, actor: User, device: PersonalDevice) -> None:
    if device.status not in (DeviceStatus.LOST.value, DeviceStatus.STOLEN.value):
        raise Conflict("This device is not reported lost or stolen.")
    previous = device.status
    device.status = DeviceStatus.ACTIVE.value
    record_audit_event(session, actor, "device.found", "personal_device", device.id, {"previous_status": previous})


# Built once (a statement's cache key is worked out once per statement object): "My devices" and the
# devices API run them on every visit. A person's handful of IMEIs come joined: one statement, not two.
_EVERY_DEVICE_OF = (
    sa.select(PersonalDevice)
    .options(lazyload(PersonalDevice.owner), joinedload(PersonalDevice.imeis))
    .where(PersonalDevice.owner_id == sa.bindparam("owner_id"))
    .order_by(PersonalDevice.created_at.desc(), PersonalDevice.id.desc())
)
_DEVICES_IN_USE_OF = _EVERY_DEVICE_OF.where(PersonalDevice.status != DeviceStatus.RETIRED.value)


def devices_of(session: Session, owner: User, include_retired: bool = False) -> list[PersonalDevice]:
    """The owner's devices, newest first.

    ``owner`` is loaded lazily: it is the person passed in, already in the session, so ``device.owner``
    costs no query, whereas the model's joined load would also run a select-in of their roles (issue 13).
    """
    query = _EVERY_DEVICE_OF if include_retired else _DEVICES_IN_USE_OF
    return list(session.scalars(query, {"owner_id": owner.id}).unique())


def owned_device(session: Session, owner: User, device_id: int) -> PersonalDevice:
    """The owner's device, or NotFound: another person's device is indistinguishable from none."""
    device = session.get(PersonalDevice, device_id)
    if device is None or device.owner_id != owner.id:
        raise NotFound("There is no such device in your register.")
    return device


REGISTER_PAGE = 100


def search_register(
    session: Session, text: str = "", status: str = "", limit: int | None = None, offset: int = 0
) -> list[PersonalDevice]:
    """Office search across every registered device: by IMEI (any part of it) or by owner or name.

    ``text`` is a substring of the owner's name, the make, model or serial (ignoring case, ``%`` and ``_``
    literal); four or more digits (spaces and dashes aside) also match any part of an IMEI. Answered from
    the search indexes (``app.services.text_search``)."""
    # The owner comes from the join the order needs (not a second join for `lazy="joined"`); the
    # register never shows the owners' roles.
    query = (
        sa.select(PersonalDevice)
        .join(PersonalDevice.owner)
        .options(contains_eager(PersonalDevice.owner).lazyload(User.role_rows))
    )
    text = text_search.searchable(text)
    if not text:
        # In the register's order people come first (ix_users_display_name_id), so a page stops after its
        # hundred devices instead of sorting all of them. PostgreSQL finds that plan itself; SQLite, with
        # no planner statistics, starts from the devices and sorts all 20,000 of them unless the name has
        # a range to search the index by: every name is >= '', so this changes no result, only the plan.
        query = query.where(User.display_name >= "")
    else:
        digits = "".join(ch for ch in text if ch.isdigit())
        is_imei = len(digits) >= 4 and len(digits) == len(text.replace(" ", "").replace("-", ""))
        query = query.where(PersonalDevice.id.in_(text_search.device_ids_matching(session, text, digits if is_imei else "")))
    if status:
        query = query.where(PersonalDevice.status == status)
    return list(
        session.scalars(query.order_by(User.display_name, PersonalDevice.id).limit(limit or REGISTER_PAGE).offset(offset))
    )


def visible_device(session: Session, viewer: User, device_id: int) -> PersonalDevice:
    """A device its owner or the office may see, or NotFound (someone else's device is indistinguishable from none)."""
    device = session.get(PersonalDevice, device_id)
    if device is None or (device.owner_id != viewer.id and not viewer.has_role(Role.OFFICE)):
        raise NotFound("There is no such device.")
    return device


def register_device_for_office(session: Session, device_id: int) -> PersonalDevice:
    """Any device in the register, for the office, or NotFound."""
    device = session.get(PersonalDevice, device_id)
    if device is None:
        raise NotFound("There is no such device.")
    return device


def device_history(session: Session, device: PersonalDevice) -> list[AuditEvent]:
    """The device's audit events, newest first, for the office's view."""
    return list(
        session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.subject_type == "personal_device", AuditEvent.subject_id == str(device.id))
            .order_by(AuditEvent.seq.desc())
        )
    )


def duplicate_imei_attempts(session: Session, limit: int = 10) -> list[AuditEvent]:
    """The latest refused registrations of an IMEI already on the register, for the office's view."""
    return list(
        session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.action == "device.duplicate_imei_refused")
            .order_by(AuditEvent.seq.desc())
            .limit(limit)
        )
    )
