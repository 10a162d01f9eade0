"""School assets: adding, changing and retiring equipment, finding it, and its history (journey J4)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from app.clock import utcnow
from app.models import (
    AssetKind,
    AssetSearchTerm,
    AssetStatus,
    AuditEvent,
    Loan,
    RegisteredImei,
    Role,
    SchoolAsset,
    StockTakeResult,
    User,
)
from app.services.audit import record_audit_event
from app.services.errors import Conflict, DuplicateImei, Forbidden, NotFound, ValidationFailed
from app.services.imei import ImeiError, last_four, normalise_imei

TAG_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,39}$")
_WORD = re.compile(r"[^\W_]+")
MAX_SEARCH_WORDS = 5
DUPLICATE_IMEI = (
    "This IMEI is already registered in Lanyard, so it cannot be given to this asset. Check the number "
    "against the phone's *#06# screen; the attempt has been recorded."
)
# Statuses an office member may set by hand; "on loan" follows from check-out and "retired" from retiring.
SETTABLE_STATUSES = (AssetStatus.AVAILABLE, AssetStatus.IN_REPAIR, AssetStatus.LOST)
RACED = "That tag or IMEI was registered a moment ago by someone else. Check it and try again."
LIMITS = {"name": 120, "make": 60, "model": 60, "serial": 60, "home_location": 80, "notes": 1000}


@dataclass
class AssetDetails:
    tag: str
    name: str
    kind: str
    make: str = ""
    model: str = ""
    serial: str = ""
    imei: str = ""
    recording_capable: bool = True
    home_location: str = ""
    notes: str = ""
    status: str = ""  # empty: leave as it is (new assets start available)


@dataclass(frozen=True)
class CleanAsset:
    """Details that passed validation, normalised (tag upper-case, IMEI 15 digits or None)."""

    tag: str
    name: str
    kind: str
    make: str
    model: str
    serial: str
    imei: str | None
    recording_capable: bool
    home_location: str
    notes: str
    status: str


def normalise_tag(typed: str) -> str:
    """Read a tag the way it is typed or scanned: a full label URL (…/t/CAM-001) or the tag itself."""
    text = (typed or "").strip()
    if "/t/" in text:
        text = text.rsplit("/t/", 1)[1].split("?", 1)[0].split("#", 1)[0].strip("/")
    return text.upper()


def require_office(actor: User) -> None:
    """The office manages equipment; the routes check this too, the services do not rely on them."""
    if actor is None or not actor.has_role(Role.OFFICE):
        raise Forbidden("Only the school office manages equipment.")


def validate_asset(details: AssetDetails) -> tuple[dict[str, list[str]], CleanAsset | None]:
    """Check details without touching the database; return the field errors, or the cleaned details."""
    errors: dict[str, list[str]] = {}
    tag = normalise_tag(details.tag)
    if not tag:
        errors["tag"] = ["Enter the asset tag printed on its label, like CAM-001."]
    elif not TAG_PATTERN.match(tag):
        errors["tag"] = ["Use letters, digits and dashes only (up to 40), starting with a letter or digit, like CAM-001."]
    if not details.name.strip():
        errors["name"] = ["Enter a name people will recognise, like Canon camera (Year 3)."]
    if details.kind not in {k.value for k in AssetKind}:
        errors["kind"] = ["Choose what kind of equipment this is."]
    for name, limit in LIMITS.items():
        if len(getattr(details, name).strip()) > limit:
            errors.setdefault(name, []).append(f"Use at most {limit} characters.")
    if details.status and details.status not in {s.value for s in SETTABLE_STATUSES}:
        errors["status"] = ["Choose available, in repair or lost."]
    imei = None
    if details.imei.strip():
        if details.kind in {k.value for k in AssetKind} and not AssetKind(details.kind).may_have_imei:
            errors["imei"] = ["Only work mobiles and tablets have an IMEI; leave this empty for other equipment."]
        else:
            try:
                imei = normalise_imei(details.imei)
            except ImeiError as error:
                errors["imei"] = [str(error)]
    if errors:
        return errors, None
    return {}, CleanAsset(
        tag=tag,
        name=details.name.strip(),
        kind=details.kind,
        make=details.make.strip(),
        model=details.model.strip(),
        serial=details.serial.strip(),
        imei=imei,
        recording_capable=bool(details.recording_capable),
        home_location=details.home_location.strip(),
        notes=details.notes.strip(),
        status=details.status,
    )


def tag_taken(session: Session, tag: str, except_id: int | None = None) -> bool:
    query = sa.select(SchoolAsset.id).where(SchoolAsset.tag == tag)
    if except_id is not None:
        query = query.where(SchoolAsset.id != except_id)
    return session.scalar(query.limit(1)) is not None


def imei_taken(session: Session, imei: str, except_asset_id: int | None = None) -> bool:
    """True when any personal device or other asset holds this IMEI (never says which)."""
    row = session.get(RegisteredImei, imei)
    return row is not None and (except_asset_id is None or row.asset_id != except_asset_id)


def refuse_duplicate_imei(session: Session, actor: User, imei: str) -> None:
    """Audit the attempt and refuse without revealing who holds the IMEI."""
    record_audit_event(session, actor, "asset.duplicate_imei_refused", "user", actor.id, {"imei_last4": last_four(imei)})
    raise DuplicateImei(DUPLICATE_IMEI, {"imei": [DUPLICATE_IMEI]})


def _in_savepoint(session: Session, change: Callable[[], None], message: str, field_name: str) -> None:
    """Apply ``change`` and flush inside a savepoint: the unique keys are the real guard, and a race that
    slips past the checks lands here as a Conflict. (begin_nested() flushes what is already pending, so
    the change itself must happen inside it.)"""
    try:
        with session.begin_nested():
            change()
            session.flush()
    except IntegrityError as error:
        raise Conflict(message, {field_name: [message]}) from error


def create_asset(session: Session, actor: User, details: AssetDetails, *, via: str = "form") -> SchoolAsset:
    """Add an asset to the school's equipment."""
    require_office(actor)
    errors, clean = validate_asset(details)
    if clean is not None and tag_taken(session, clean.tag):
        errors["tag"] = [f"Another asset already has the tag {clean.tag}."]
    if errors or clean is None:
        raise ValidationFailed("Some details need correcting.", errors)
    if clean.imei and imei_taken(session, clean.imei):
        refuse_duplicate_imei(session, actor, clean.imei)
    asset = SchoolAsset(
        tag=clean.tag,
        name=clean.name,
        kind=clean.kind,
        make=clean.make,
        model=clean.model,
        serial=clean.serial,
        recording_capable=clean.recording_capable,
        home_location=clean.home_location,
        notes=clean.notes,
        status=clean.status or AssetStatus.AVAILABLE.value,
    )
    if clean.imei:
        asset.imei_row = RegisteredImei(imei=clean.imei, slot=1)
    _in_savepoint(session, lambda: session.add(asset), RACED, "tag")
    index_search_terms(session, asset)
    record_audit_event(
        session,
        actor,
        "asset.created",
        "asset",
        asset.id,
        {"tag": asset.tag, "kind": asset.kind, "via": via, "imei_last4": last_four(clean.imei)},
    )
    return asset


def update_asset(session: Session, actor: User, asset: SchoolAsset, details: AssetDetails) -> list[str]:
    """Change an asset's details; return the names of the fields that changed."""
    require_office(actor)
    if asset.status == AssetStatus.RETIRED.value:
        raise Conflict("This asset is retired and can no longer be changed.")
    clean = _checked_change(session, asset, details)
    if clean.imei and clean.imei != asset.imei and imei_taken(session, clean.imei, asset.id):
        refuse_duplicate_imei(session, actor, clean.imei)
    changed: list[str] = []
    _in_savepoint(session, lambda: changed.extend(_apply_details(session, asset, clean)), RACED, "tag")
    if set(changed) & set(SEARCHED_FIELDS):
        index_search_terms(session, asset)
    if changed:
        asset.updated_at = utcnow()
        record_audit_event(session, actor, "asset.updated", "asset", asset.id, {"fields": sorted(changed)})
    return changed


def _checked_change(session: Session, asset: SchoolAsset, details: AssetDetails) -> CleanAsset:
    """The new details, checked against the other assets; a status change is ignored while on loan."""
    errors, clean = validate_asset(details)
    if clean is not None and tag_taken(session, clean.tag, asset.id):
        errors["tag"] = [f"Another asset already has the tag {clean.tag}."]
    if clean is not None and clean.status and asset.status == AssetStatus.ON_LOAN.value:
        if clean.status != AssetStatus.AVAILABLE.value:
            errors["status"] = ["This asset is on loan: check it in before changing its status."]
        clean = CleanAsset(**{**clean.__dict__, "status": ""})
    if errors or clean is None:
        raise ValidationFailed("Some details need correcting.", errors)
    return clean


def _apply_details(session: Session, asset: SchoolAsset, clean: CleanAsset) -> list[str]:
    """Copy the checked details onto the asset; return the names of the fields that changed."""
    changed: list[str] = []
    for name in ("tag", "name", "kind", "make", "model", "serial", "recording_capable", "home_location", "notes"):
        if getattr(asset, name) != getattr(clean, name):
            setattr(asset, name, getattr(clean, name))
            changed.append(name)
    if clean.status and clean.status != asset.status:
        asset.status = clean.status
        changed.append("status")
    if clean.imei != asset.imei:
        if asset.imei_row is not None:
            asset.imei_row = None
            session.flush()
        if clean.imei:
            asset.imei_row = RegisteredImei(imei=clean.imei, slot=1)
        changed.append("imei")
    return changed


def retire_asset(session: Session, actor: User, asset: SchoolAsset, reason: str = "") -> None:
    """Take an asset out of use for good. Its record, loans and IMEI stay for the audit trail."""
    require_office(actor)
    if asset.status == AssetStatus.RETIRED.value:
        return
    if asset.status == AssetStatus.ON_LOAN.value:
        raise Conflict(f"{asset.tag} is on loan. Check it in before retiring it.")
    if len(reason) > 200:
        raise ValidationFailed("The reason is too long.", {"reason": ["Use at most 200 characters."]})
    previous = asset.status
    asset.status = AssetStatus.RETIRED.value
    asset.retired_at = utcnow()
    record_audit_event(
        session, actor, "asset.retired", "asset", asset.id, {"previous_status": previous, "reason": reason.strip()}
    )


def get_asset(session: Session, asset_id: int) -> SchoolAsset:
    asset = session.get(SchoolAsset, asset_id)
    if asset is None:
        raise NotFound("There is no such asset.")
    return asset


def find_by_tag(session: Session, tag: str) -> SchoolAsset | None:
    tag = normalise_tag(tag)
    if not tag:
        return None
    return session.scalar(sa.select(SchoolAsset).where(SchoolAsset.tag == tag))


def lock_asset(session: Session, asset_id: int) -> SchoolAsset:
    """Load the asset with a row lock (PostgreSQL) so two check-outs or check-ins queue up.

    Its IMEI row is loaded only if asked for (a check-out or check-in never does), not by a select-in.
    """
    asset = session.execute(
        sa.select(SchoolAsset)
        .options(lazyload(SchoolAsset.imei_row))
        .where(SchoolAsset.id == asset_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if asset is None:
        raise NotFound("There is no such asset.")
    return asset


SEARCHED_FIELDS = ("tag", "name", "make", "model", "serial", "home_location")


def search_words(text: str) -> list[str]:
    """The lower-case words of a text: "Canon EOS-250D" gives canon, eos, 250d."""
    return [word[:80] for word in _WORD.findall((text or "").lower())]


def terms_for(tag: str, name: str, make: str, model: str, serial: str, home_location: str) -> set[str]:
    """What a search can find an asset by: the start of any of these words, and the whole tag."""
    terms = {tag.lower()[:80]}
    for text in (tag, name, make, model, serial, home_location):
        terms.update(search_words(text))
    return {term for term in terms if term}


def index_search_terms(session: Session, asset: SchoolAsset) -> None:
    session.execute(sa.delete(AssetSearchTerm).where(AssetSearchTerm.asset_id == asset.id))
    terms = terms_for(asset.tag, asset.name, asset.make, asset.model, asset.serial, asset.home_location)
    session.execute(sa.insert(AssetSearchTerm), [{"asset_id": asset.id, "term": term} for term in sorted(terms)])


def _starts_with(session: Session, column, prefix: str):
    """``column`` starts with ``prefix``, in a form each database answers from an index."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite's LIKE ignores case and so cannot use a plain index; a range on the binary order can.
        return sa.and_(column >= prefix, column < prefix + "\U0010ffff")
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%", escape="\\")


def search_assets(
    session: Session,
    text: str = "",
    *,
    kind: str = "",
    status: str = "",
    location: str = "",
    include_retired: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[SchoolAsset]:
    """Find assets whose tag starts with the text, or with a word starting with each word typed (in the
    tag, name, make, model, serial or home), or whose IMEI holds the digits typed; ordered by tag."""
    text = text.strip()[:100]
    tag = normalise_tag(text)
    if "-" in tag and TAG_PATTERN.match(tag):
        # Typed like a tag (CAM-0...): the tag index answers alone; words only if no tag starts so.
        found = _run_search(
            session,
            _starts_with(session, SchoolAsset.tag, tag),
            kind=kind,
            status=status,
            location=location,
            include_retired=include_retired,
            limit=limit,
            offset=offset,
        )
        if found or offset:
            return found
    condition = None
    if text:
        conditions = [_starts_with(session, SchoolAsset.tag, tag)] if tag else []
        words = search_words(text)[:MAX_SEARCH_WORDS]
        if words:
            matching = [
                sa.select(AssetSearchTerm.asset_id).where(_starts_with(session, AssetSearchTerm.term, word)) for word in words
            ]
            conditions.append(SchoolAsset.id.in_(sa.intersect(*matching) if len(matching) > 1 else matching[0]))
        digits = "".join(ch for ch in text if ch.isdigit())
        if len(digits) >= 4 and digits == text.replace(" ", "").replace("-", ""):
            conditions.append(
                SchoolAsset.id.in_(
                    sa.select(RegisteredImei.asset_id).where(
                        RegisteredImei.asset_id.is_not(None), RegisteredImei.imei.like(f"%{digits}%")
                    )
                )
            )
        condition = sa.or_(*conditions)
    return _run_search(
        session,
        condition,
        kind=kind,
        status=status,
        location=location,
        include_retired=include_retired,
        limit=limit,
        offset=offset,
    )


def _run_search(
    session: Session, condition, *, kind: str, status: str, location: str, include_retired: bool, limit: int, offset: int
):
    query = sa.select(SchoolAsset)
    if condition is not None:
        query = query.where(condition)
    if kind:
        query = query.where(SchoolAsset.kind == kind)
    if status:
        query = query.where(SchoolAsset.status == status)
    elif not include_retired:
        query = query.where(SchoolAsset.status != AssetStatus.RETIRED.value)
    if location:
        query = query.where(SchoolAsset.home_location == location)
    return list(session.scalars(query.order_by(SchoolAsset.tag).limit(limit).offset(offset)))


# Each distinct home location in order, one index probe per location (ix_school_assets_location_tag)
# rather than reading every asset: neither database skips through an index for DISTINCT by itself, and at
# 50,000 assets the plain DISTINCT cost 12-30 ms on PostgreSQL on every equipment page.
_HOME_LOCATIONS = sa.text(
    """
    WITH RECURSIVE locations(home_location) AS (
        SELECT min(home_location) FROM school_assets WHERE home_location > ''
        UNION ALL
        SELECT (SELECT min(a.home_location) FROM school_assets AS a WHERE a.home_location > locations.home_location)
        FROM locations WHERE locations.home_location IS NOT NULL
    )
    SELECT home_location FROM locations WHERE home_location IS NOT NULL
    """
)


def home_locations(session: Session) -> list[str]:
    """Every home location in use, for filters and stock-takes, in the database's order."""
    return list(session.scalars(_HOME_LOCATIONS))


def assets_by_ids(session: Session, ids: list[int]) -> list[SchoolAsset]:
    if not ids:
        return []
    return list(session.scalars(sa.select(SchoolAsset).where(SchoolAsset.id.in_(ids)).order_by(SchoolAsset.tag)))


# History -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    """One line of an asset's timeline."""

    at: datetime
    kind: str  # loan, return, stocktake, edit, permission, ...
    text: str
    url: str = ""
    details: dict = field(default_factory=dict)


HistorySource = Callable[[Session, SchoolAsset], list[HistoryEntry]]
_history_sources: list[HistorySource] = []


def register_history_source(source: HistorySource) -> HistorySource:
    """Let another feature add to an asset's timeline.

    The permissions feature registers a function returning one HistoryEntry(kind="permission") for
    each permission request that named this asset, e.g. "Mr B Clarke into Year 3, approved by Mrs A".
    """
    if source not in _history_sources:
        _history_sources.append(source)
    return source


EDIT_ACTIONS = {
    "asset.created": "Added",
    "asset.updated": "Details changed",
    "asset.retired": "Retired",
}


def asset_history(session: Session, asset: SchoolAsset, limit: int = 200) -> list[HistoryEntry]:
    """Loans, returns, stock-takes, edits and whatever other features add, newest first."""
    from app.clock import format_date

    entries: list[HistoryEntry] = []
    loans = session.scalars(sa.select(Loan).where(Loan.asset_id == asset.id).order_by(Loan.out_at.desc()).limit(limit))
    for loan in loans:
        text = f"Lent to {loan.borrower.display_name} by {loan.issued_by.display_name}, due {format_date(loan.due_on)}"
        if loan.purpose:
            text += f" ({loan.purpose})"
        if loan.condition_out:
            text += f"; condition going out: {loan.condition_out}"
        if loan.terms_accepted_at is not None:
            via = "in person" if loan.terms_accepted_via == "in_person" else "on their phone"
            text += f"; terms accepted {via} on {format_date(loan.terms_accepted_at)}"
        else:
            text += "; terms not accepted"
        entries.append(HistoryEntry(loan.out_at, "loan", text, details={"loan_id": loan.id}))
        if loan.returned_at is not None:
            received = loan.received_by.display_name if loan.received_by else "the office"
            text = f"Returned by {loan.borrower.display_name}, received by {received}"
            if loan.damaged:
                text += ", damaged"
            if loan.condition_in:
                text += f": {loan.condition_in}"
            entries.append(HistoryEntry(loan.returned_at, "return", text, details={"loan_id": loan.id}))
    results = session.scalars(
        sa.select(StockTakeResult).where(StockTakeResult.asset_id == asset.id).order_by(StockTakeResult.id.desc()).limit(limit)
    )
    for result in results:
        take = result.stocktake
        text = f"Stock-take #{take.id} ({take.scope_label}): {result.outcome_label.lower()}"
        if result.borrower is not None:
            text += f" (with {result.borrower.display_name})"
        entries.append(HistoryEntry(take.closed_at or take.started_at, "stocktake", text, url=f"/equipment/stocktakes/{take.id}"))
    events = session.scalars(
        sa.select(AuditEvent)
        .where(
            AuditEvent.subject_type == "asset",
            AuditEvent.subject_id == str(asset.id),
            AuditEvent.action.in_(list(EDIT_ACTIONS)),
        )
        .order_by(AuditEvent.seq.desc())
        .limit(limit)
    )
    for event in events:
        who = event.actor.display_name if event.actor else "the system"
        entries.append(HistoryEntry(event.occurred_at, "edit", f"{EDIT_ACTIONS[event.action]} by {who}"))
    for source in _history_sources:
        entries.extend(source(session, asset))
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]
