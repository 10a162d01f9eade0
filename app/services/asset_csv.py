"""CSV in and out for equipment: an all-or-nothing asset import with a report naming each bad row,
and streamed exports guarded against formula injection (DESIGN.md section 10)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from app.clock import format_date, format_datetime, local_today
from app.models import AssetKind, Loan, RegisteredImei, SchoolAsset, StockTake, User
from app.services.assets import AssetDetails, create_asset, require_office, validate_asset
from app.services.audit import record_audit_event
from app.services.csv_safe import csv_lines
from app.services.errors import ValidationFailed
from app.services.imei import last_four
from app.services.stocktakes import stocktake_report

IMPORT_COLUMNS = ("tag", "name", "kind", "make", "model", "serial", "imei", "recording_capable", "home_location", "notes")
REQUIRED_COLUMNS = ("tag", "name", "kind")
MAX_IMPORT_ROWS = 5000
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}
_KINDS = {kind.value: kind.value for kind in AssetKind} | {kind.label.lower(): kind.value for kind in AssetKind}


# Import --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    row: int  # the line in the file, counting the header as line 1
    tag: str
    messages: tuple[str, ...]

    def __str__(self) -> str:
        label = f"Row {self.row}" + (f" ({self.tag})" if self.tag else "")
        return f"{label}: {' '.join(self.messages)}"


class ImportRefused(ValidationFailed):
    """Nothing was imported; ``problems`` names each bad row. The refused attempt itself is audited."""

    keep_changes = True

    def __init__(self, message: str, problems: list[RowProblem]) -> None:
        super().__init__(message, {"file": [str(problem) for problem in problems[:200]]})
        self.problems = problems


def _flag(value: str, kind: str) -> bool | None:
    value = value.strip().lower()
    if not value:
        return kind != AssetKind.OTHER.value
    if value in _YES:
        return True
    if value in _NO:
        return False
    return None


def _read(text: str) -> tuple[list[str], list[dict[str, str]], RowProblem | None]:
    """The header, the rows, and the row the csv module could not read (a cell over its size limit,
    a NUL byte), if any: reading stops there and the whole file is refused naming that row."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    try:
        header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
        reader.fieldnames = header
        for row in reader:
            rows.append({key: (value or "").strip() if isinstance(value, str) else "" for key, value in row.items() if key})
            if len(rows) > MAX_IMPORT_ROWS:
                break
    except csv.Error as error:
        # The header is row 1 and the rows read so far follow it, so the unreadable one is the next.
        row = 1 if header is None else len(rows) + 2
        return header or [], rows, RowProblem(row, "", (_unreadable(error),))
    return header, rows, None


def _unreadable(error: csv.Error) -> str:
    if "field larger than field limit" in str(error):
        return f"A cell is longer than the {csv.field_size_limit():,} characters a CSV cell may hold; nothing was read past it."
    return "This row cannot be read as CSV (it may hold a NUL byte or broken quotes); nothing was read past it."


def import_assets(session, actor: User, text: str) -> list[SchoolAsset]:
    """Add every asset in a CSV file, or none: any bad row refuses the whole file with a report."""
    require_office(actor)
    header, rows, unreadable = _read(text)
    problems: list[RowProblem] = []
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    unknown = [name for name in header if name and name not in IMPORT_COLUMNS]
    if unreadable is not None:
        problems.append(unreadable)
    elif missing or unknown:
        messages = []
        if missing:
            messages.append(f"The header row must include {', '.join(missing)}.")
        if unknown:
            messages.append(f"Unknown columns: {', '.join(unknown)} (allowed: {', '.join(IMPORT_COLUMNS)}).")
        problems.append(RowProblem(1, "", tuple(messages)))
    elif not rows:
        problems.append(RowProblem(2, "", ("The file has a header but no assets.",)))
    elif len(rows) > MAX_IMPORT_ROWS:
        problems.append(RowProblem(MAX_IMPORT_ROWS + 2, "", (f"Import at most {MAX_IMPORT_ROWS} assets at a time.",)))
    details_by_row: list[tuple[int, AssetDetails]] = []
    if not problems:
        tags_seen: dict[str, int] = {}
        imeis_seen: dict[str, int] = {}
        for index, row in enumerate(rows, start=2):
            kind = _KINDS.get(row.get("kind", "").lower(), row.get("kind", ""))
            flag = _flag(row.get("recording_capable", ""), kind)
            details = AssetDetails(
                tag=row.get("tag", ""),
                name=row.get("name", ""),
                kind=kind,
                make=row.get("make", ""),
                model=row.get("model", ""),
                serial=row.get("serial", ""),
                imei=row.get("imei", ""),
                recording_capable=bool(flag),
                home_location=row.get("home_location", ""),
                notes=row.get("notes", ""),
            )
            errors, clean = validate_asset(details)
            messages = [f"{name}: {' '.join(texts)}" for name, texts in errors.items()]
            if flag is None:
                messages.append("recording_capable: write yes or no.")
            if clean is not None:
                if clean.tag in tags_seen:
                    messages.append(f"tag: {clean.tag} is also on row {tags_seen[clean.tag]}.")
                tags_seen.setdefault(clean.tag, index)
                if clean.imei:
                    if clean.imei in imeis_seen:
                        messages.append(f"imei: the IMEI ending {last_four(clean.imei)} is also on row {imeis_seen[clean.imei]}.")
                    imeis_seen.setdefault(clean.imei, index)
            if messages:
                problems.append(RowProblem(index, row.get("tag", "").upper()[:40], tuple(messages)))
            else:
                details_by_row.append((index, details))
        if tags_seen:
            taken = set(session.scalars(sa.select(SchoolAsset.tag).where(SchoolAsset.tag.in_(list(tags_seen)))))
            for tag in sorted(taken, key=lambda t: tags_seen[t]):
                problems.append(RowProblem(tags_seen[tag], tag, (f"tag: an asset with the tag {tag} already exists.",)))
        if imeis_seen:
            held = set(session.scalars(sa.select(RegisteredImei.imei).where(RegisteredImei.imei.in_(list(imeis_seen)))))
            for imei in sorted(held, key=lambda i: imeis_seen[i]):
                # Never say whose: a personal phone's owner is nobody else's business.
                problems.append(
                    RowProblem(imeis_seen[imei], "", (f"imei: the IMEI ending {last_four(imei)} is already registered in Lanyard.",))
                )
    if problems:
        problems.sort(key=lambda problem: problem.row)
        record_audit_event(
            session,
            actor,
            "asset.import_refused",
            "",
            "",
            {"rows": len(rows), "bad_rows": sorted({problem.row for problem in problems})[:100]},
        )
        count = len({problem.row for problem in problems})
        raise ImportRefused(
            f"Nothing was imported: {count} row{'s' if count != 1 else ''} need{'s' if count == 1 else ''} correcting.", problems
        )
    created = [create_asset(session, actor, details, via="import") for _index, details in details_by_row]
    record_audit_event(session, actor, "asset.imported", "", "", {"count": len(created)})
    return created


def import_template() -> Iterator[str]:
    return csv_lines(IMPORT_COLUMNS, [("CAM-001", "Canon camera (Year 3)", "camera", "Canon", "EOS 250D", "SN123", "", "yes", "Year 3", "")])


# Exports -------------------------------------------------------------------------------------------

ASSET_EXPORT_COLUMNS = (
    "tag", "name", "kind", "make", "model", "serial", "imei", "recording_capable", "status", "home_location",
    "notes", "last_audited", "created",
)
LOAN_EXPORT_COLUMNS = (
    "loan_id", "tag", "asset", "borrower", "borrower_email", "issued_by", "out", "due", "returned", "received_by",
    "purpose", "condition_out", "condition_in", "damaged", "overdue",
)


def export_assets(session) -> Iterator[str]:
    """Every asset (retired ones too), streamed in batches. The office sees IMEIs in full."""

    def rows():
        query = (
            sa.select(SchoolAsset, RegisteredImei.imei)
            .outerjoin(RegisteredImei, RegisteredImei.asset_id == SchoolAsset.id)
            .order_by(SchoolAsset.tag)
            .execution_options(yield_per=1000)
        )
        for asset, imei in session.execute(query):
            yield (
                asset.tag, asset.name, asset.kind, asset.make, asset.model, asset.serial, imei or "",
                "yes" if asset.recording_capable else "no", asset.status, asset.home_location, asset.notes,
                format_datetime(asset.last_audited_at), format_datetime(asset.created_at),
            )

    return csv_lines(ASSET_EXPORT_COLUMNS, rows())


def export_loans(session, *, open_only: bool = False) -> Iterator[str]:
    """Loans, newest first, streamed."""
    today = local_today()

    def rows():
        query = sa.select(Loan).order_by(Loan.out_at.desc(), Loan.id.desc()).execution_options(yield_per=1000)
        if open_only:
            query = query.where(Loan.returned_at.is_(None))
        for loan in session.scalars(query):
            yield (
                loan.id, loan.asset.tag, loan.asset.name, loan.borrower.display_name, loan.borrower.email,
                loan.issued_by.display_name, format_datetime(loan.out_at), format_date(loan.due_on),
                format_datetime(loan.returned_at), loan.received_by.display_name if loan.received_by else "",
                loan.purpose, loan.condition_out, loan.condition_in, "yes" if loan.damaged else "no",
                "yes" if loan.is_overdue(today) else "no",
            )

    return csv_lines(LOAN_EXPORT_COLUMNS, rows())


def export_stocktake(session, take: StockTake) -> Iterator[str]:
    report = stocktake_report(session, take)

    def rows():
        for outcome, results in report.items():
            for result in results:
                yield (
                    result.tag,
                    result.asset.name if result.asset else "(unknown tag)",
                    outcome,
                    result.borrower.display_name if result.borrower else "",
                    format_datetime(result.loaned_since),
                    result.condition,
                    result.asset.home_location if result.asset else "",
                )

    return csv_lines(("tag", "name", "outcome", "on_loan_to", "on_loan_since", "condition", "home_location"), rows())
