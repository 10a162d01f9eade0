"""CSV in and out for equipment: an all-or-nothing asset import with a report naming each bad row,
and streamed exports guarded against formula injection (DESIGN.md section 10)."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import format_date, format_datetime, local_today
from app.models import AssetKind, Loan, RegisteredImei, SchoolAsset, StockTake, User
from app.services.assets import AssetDetails, create_asset, require_office, validate_asset
from app.services.audit import record_audit_event
from app.services.csv_safe import csv_lines
from app.services.csv_upload import RowProblem, file_problem, read_table, refused_message
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


def _row_details(row: dict[str, str]) -> tuple[AssetDetails, bool | None]:
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
    return details, flag


def _check_rows(
    rows: list[dict[str, str]], problems: list[RowProblem]
) -> tuple[list[AssetDetails], dict[str, int], dict[str, int]]:
    """Each row's details checked on their own and against the rows above; the tags and IMEIs seen, by first row."""
    good: list[AssetDetails] = []
    tags_seen: dict[str, int] = {}
    imeis_seen: dict[str, int] = {}
    for index, row in enumerate(rows, start=2):
        details, flag = _row_details(row)
        errors, clean = validate_asset(details)
        messages = [f"{name}: {' '.join(texts)}" for name, texts in errors.items()]
        if flag is None:
            messages.append("recording_capable: write yes or no.")
        if clean is not None:
            messages.extend(_repeats(clean.tag, clean.imei, index, tags_seen, imeis_seen))
        if messages:
            problems.append(RowProblem(index, row.get("tag", "").upper()[:40], tuple(messages)))
        else:
            good.append(details)
    return good, tags_seen, imeis_seen


def _repeats(tag: str, imei: str | None, index: int, tags_seen: dict[str, int], imeis_seen: dict[str, int]) -> list[str]:
    messages = []
    if tag in tags_seen:
        messages.append(f"tag: {tag} is also on row {tags_seen[tag]}.")
    tags_seen.setdefault(tag, index)
    if imei:
        if imei in imeis_seen:
            messages.append(f"imei: the IMEI ending {last_four(imei)} is also on row {imeis_seen[imei]}.")
        imeis_seen.setdefault(imei, index)
    return messages


def _already_held(session: Session, tags_seen: dict[str, int], imeis_seen: dict[str, int]) -> list[RowProblem]:
    """Rows whose tag is another asset's, or whose IMEI is registered already (never saying whose)."""
    problems = []
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
    return problems


def import_assets(session: Session, actor: User, text: str) -> list[SchoolAsset]:
    """Add every asset in a CSV file, or none: any bad row refuses the whole file with a report."""
    require_office(actor)
    table = read_table(text, MAX_IMPORT_ROWS)
    whole_file = file_problem(
        table,
        required=REQUIRED_COLUMNS,
        allowed=IMPORT_COLUMNS,
        allowed_label=", ".join(IMPORT_COLUMNS),
        max_rows=MAX_IMPORT_ROWS,
        nobody="The file has a header but no assets.",
        too_many=f"Import at most {MAX_IMPORT_ROWS} assets at a time.",
    )
    problems: list[RowProblem] = [whole_file] if whole_file is not None else []
    good: list[AssetDetails] = []
    if not problems:
        good, tags_seen, imeis_seen = _check_rows(table.rows, problems)
        problems.extend(_already_held(session, tags_seen, imeis_seen))
    if problems:
        problems.sort(key=lambda problem: problem.row)
        bad_rows = sorted({problem.row for problem in problems})
        record_audit_event(session, actor, "asset.import_refused", "", "", {"rows": len(table.rows), "bad_rows": bad_rows[:100]})
        raise ImportRefused(refused_message(problems), problems)
    created = [create_asset(session, actor, details, via="import") for details in good]
    record_audit_event(session, actor, "asset.imported", "", "", {"count": len(created)})
    return created


def import_template() -> Iterator[str]:
    return csv_lines(
        IMPORT_COLUMNS, [("CAM-001", "Canon camera (Year 3)", "camera", "Canon", "EOS 250D", "SN123", "", "yes", "Year 3", "")]
    )


# Exports -------------------------------------------------------------------------------------------

ASSET_EXPORT_COLUMNS = (
    "tag",
    "name",
    "kind",
    "make",
    "model",
    "serial",
    "imei",
    "recording_capable",
    "status",
    "home_location",
    "notes",
    "last_audited",
    "created",
)
LOAN_EXPORT_COLUMNS = (
    "loan_id",
    "tag",
    "asset",
    "borrower",
    "borrower_email",
    "issued_by",
    "out",
    "due",
    "returned",
    "received_by",
    "purpose",
    "condition_out",
    "condition_in",
    "damaged",
    "overdue",
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
                asset.tag,
                asset.name,
                asset.kind,
                asset.make,
                asset.model,
                asset.serial,
                imei or "",
                "yes" if asset.recording_capable else "no",
                asset.status,
                asset.home_location,
                asset.notes,
                format_datetime(asset.last_audited_at),
                format_datetime(asset.created_at),
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
                loan.id,
                loan.asset.tag,
                loan.asset.name,
                loan.borrower.display_name,
                loan.borrower.email,
                loan.issued_by.display_name,
                format_datetime(loan.out_at),
                format_date(loan.due_on),
                format_datetime(loan.returned_at),
                loan.received_by.display_name if loan.received_by else "",
                loan.purpose,
                loan.condition_out,
                loan.condition_in,
                "yes" if loan.damaged else "no",
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
