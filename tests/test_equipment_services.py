"""Equipment rules: one open loan per asset (also under a race), check-in, overdue on school dates across
the clock changes, reminders, the all-or-nothing import, stock-take classification, shared IMEI register."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app import clock
from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, Loan, Notification, RegisteredImei, Role, SchoolAsset, StockTakeScan, User
from app.services import asset_csv, assets, csv_safe, devices, loans, notifications, stocktakes
from app.services.audit import verify_chain
from app.services.errors import Conflict, DuplicateImei, Forbidden
from tests.equipment_factories import lend, make_asset
from tests.factories import make_device, make_imei, make_user


def _actions(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


@pytest.fixture
def office():
    return make_user(Role.OFFICE, name="Ms Office")


@pytest.fixture
def teacher():
    return make_user(name="Mr Teacher")


# Loans ---------------------------------------------------------------------------------------------


def test_check_out_records_the_loan_and_marks_the_asset(app, office, teacher):
    asset = make_asset(office)
    loan = lend(office, asset, teacher, purpose="Trip photos", condition="Good")
    db.session.refresh(asset)
    assert asset.status == "on_loan"
    assert loan.borrower_id == teacher.id and loan.issued_by_id == office.id and loan.returned_at is None
    event = _actions("loan.checked_out")[-1]
    assert event.subject_type == "asset" and event.subject_id == str(asset.id)
    assert json.loads(event.details)["loan_id"] == loan.id
    assert loans.assets_on_loan_to(db.session, teacher) == [asset]


def test_double_check_out_is_refused(app, office, teacher):
    asset = make_asset(office)
    lend(office, asset, teacher)
    other = make_user(name="Miss Other")
    with write_intent(), pytest.raises(Conflict) as refused:
        loans.check_out(db.session, office, asset.id, borrower_id=other.id, due_on=clock.local_today())
    db.session.rollback()
    assert "already on loan to Mr Teacher" in refused.value.message
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Loan).where(Loan.asset_id == asset.id)) == 1


def test_the_database_allows_one_open_loan_per_asset(app, office, teacher):
    """The partial unique index holds even when the code is bypassed."""
    asset = make_asset(office)
    lend(office, asset, teacher)
    with write_intent():
        db.session.add(Loan(asset_id=asset.id, borrower_id=teacher.id, issued_by_id=office.id, due_on=date(2030, 1, 1)))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_the_index_is_the_final_guard_when_the_check_misses(app, office, teacher, monkeypatch):
    asset = make_asset(office)
    lend(office, asset, teacher)
    with write_intent():
        db.session.get(SchoolAsset, asset.id).status = "available"  # as if the status had been out of step
        monkeypatch.setattr(loans, "open_loan_for", lambda session, asset_id: None)
        with pytest.raises(Conflict) as refused:
            loans.check_out(db.session, office, asset.id, borrower_id=teacher.id, due_on=clock.local_today())
        db.session.rollback()
    assert "has just been lent by someone else" in refused.value.message


def test_racing_check_outs_lend_the_asset_once(app, office, backend):
    asset = make_asset(office)
    borrowers = [make_user(name=f"Racer {n}") for n in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(borrower_id: int) -> None:
        with app.app_context():
            actor = db.session.get(User, office_id)
            db.session.rollback()  # wait at the barrier holding no transaction (and so no SQLite lock)
            barrier.wait(timeout=10)
            try:
                with write_intent():
                    loans.check_out(db.session, actor, asset_id, borrower_id=borrower_id, due_on=clock.local_today())
                    db.session.commit()
                result = "lent"
            except Conflict as error:
                db.session.rollback()
                result = "refused: " + error.message
            finally:
                db.session.remove()
            with lock:
                outcomes.append(result)

    # Plain ids only: the threads must never touch this thread's session or its objects.
    office_id, asset_id, borrower_ids = office.id, asset.id, [b.id for b in borrowers]
    db.session.rollback()
    threads = [threading.Thread(target=attempt, args=(borrower_id,)) for borrower_id in borrower_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(o.split(":")[0] for o in outcomes) == ["lent", "refused"], outcomes
    assert "already on loan" in next(o for o in outcomes if o.startswith("refused"))
    db.session.rollback()  # leave this thread's older read snapshot
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Loan).where(Loan.asset_id == asset_id)) == 1
    assert len(_actions("loan.checked_out")) == 1
    assert verify_chain(db.session).ok


def test_check_in_of_an_asset_not_on_loan_is_refused_clearly(app, office):
    asset = make_asset(office, tag="IPAD-7")
    with write_intent(), pytest.raises(Conflict) as refused:
        loans.check_in(db.session, office, asset.id)
    db.session.rollback()
    assert refused.value.message == "IPAD-7 is not on loan, so there is nothing to check in."


def test_check_in_closes_the_loan_and_damage_sends_it_to_repair(app, office, teacher):
    asset = make_asset(office)
    lend(office, asset, teacher)
    with write_intent():
        loan = loans.check_in(db.session, office, asset.id, condition="Cracked screen", damaged=True)
        db.session.commit()
    db.session.refresh(asset)
    assert loan.returned_at is not None and loan.received_by_id == office.id and loan.damaged
    assert asset.status == "in_repair"
    assert json.loads(_actions("loan.checked_in")[-1].details)["damaged"] is True
    with write_intent(), pytest.raises(Conflict, match="in repair"):
        loans.check_out(db.session, office, asset.id, borrower_id=teacher.id, due_on=clock.local_today())
    db.session.rollback()


def test_only_the_office_lends(app, office, teacher):
    asset = make_asset(office)
    with write_intent(), pytest.raises(Forbidden):
        loans.check_out(db.session, teacher, asset.id, borrower_id=teacher.id, due_on=clock.local_today())
    db.session.rollback()


def test_due_date_in_the_past_is_refused(app, office, teacher, frozen_clock):
    asset = make_asset(office)
    with write_intent(), pytest.raises(Exception) as refused:
        loans.check_out(db.session, office, asset.id, borrower_id=teacher.id, due_on=date(2026, 11, 24))
    db.session.rollback()
    assert refused.value.field_errors["due_on"] == ["The due date must be today (25/11/2026) or later."]


# Overdue on school dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lent_at", "due_on", "not_yet", "overdue_from"),
    [
        # Autumn: clocks go back at 01:00 UTC on Sunday 25 October 2026 (BST -> GMT).
        (
            datetime(2026, 10, 20, 9, tzinfo=UTC),
            date(2026, 10, 25),
            datetime(2026, 10, 25, 23, 30, tzinfo=UTC),
            datetime(2026, 10, 26, 0, 0, tzinfo=UTC),
        ),
        # Spring: clocks go forward at 01:00 UTC on Sunday 29 March 2026 (GMT -> BST): midnight in school is 23:00 UTC.
        (
            datetime(2026, 3, 24, 9, tzinfo=UTC),
            date(2026, 3, 29),
            datetime(2026, 3, 29, 22, 59, tzinfo=UTC),
            datetime(2026, 3, 29, 23, 0, tzinfo=UTC),
        ),
    ],
)
def test_overdue_is_computed_on_school_dates_across_the_clock_change(
    app, office, teacher, frozen_clock, lent_at, due_on, not_yet, overdue_from
):
    frozen_clock.set(lent_at)
    asset = make_asset(office)
    loan = lend(office, asset, teacher, due_on=due_on)

    frozen_clock.set(not_yet)
    assert loans.overdue_loans(db.session) == []
    assert loans.loan_json(loan)["overdue"] is False

    frozen_clock.set(overdue_from)
    assert [found.id for found in loans.overdue_loans(db.session)] == [loan.id]
    assert loans.loan_json(loan)["overdue"] is True
    assert loans.days_overdue(loan) == 1


def test_reminders_go_on_the_due_day_and_after_once_a_day(app, office, teacher, frozen_clock, monkeypatch):
    delivered: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        notifications, "_channels", [lambda session, notices, extra: delivered.extend((n.kind, extra) for n in notices)]
    )
    frozen_clock.set(datetime(2026, 11, 23, 9, tzinfo=UTC))
    asset = make_asset(office, tag="REC-1", name="Voice recorder")
    loan = lend(office, asset, teacher, due_on=date(2026, 11, 24), accepted_in_person=True)  # no terms notice

    def run(now: datetime):
        frozen_clock.set(now)
        with write_intent():
            report = loans.send_loan_reminders(db.session, now)
            db.session.commit()
        return report

    assert run(datetime(2026, 11, 23, 18, tzinfo=UTC)).borrowers_reminded == 0  # not due yet
    first = run(datetime(2026, 11, 24, 8, tzinfo=UTC))
    assert first.borrowers_reminded == 1 and not first.summary_sent  # due today: nothing overdue yet
    assert delivered == [("loan.due_today", {"kind": "loan.due_today", "loan_id": loan.id})]
    assert run(datetime(2026, 11, 24, 15, tzinfo=UTC)).borrowers_reminded == 0  # once a day

    delivered.clear()
    next_day = run(datetime(2026, 11, 25, 8, tzinfo=UTC))
    assert next_day.borrowers_reminded == 1 and next_day.summary_sent and next_day.overdue_count == 1
    kinds = [kind for kind, _extra in delivered]
    assert kinds == ["loan.overdue", "loan.overdue_summary"]
    assert delivered[1][1]["kind"] == "loan.overdue_summary" and delivered[1][1]["loan_ids"] == [loan.id]
    again = run(datetime(2026, 11, 25, 12, tzinfo=UTC))
    assert again.borrowers_reminded == 0 and not again.summary_sent

    office_notices = db.session.scalars(sa.select(Notification).where(Notification.user_id == office.id)).all()
    assert [n.title for n in office_notices] == ["1 loan is overdue"]
    teacher_notices = db.session.scalars(
        sa.select(Notification).where(Notification.user_id == teacher.id).order_by(Notification.id)
    ).all()
    assert [n.kind for n in teacher_notices] == ["loan.due_today", "loan.overdue"]
    assert len(_actions("loan.reminder_sent")) == 2 and len(_actions("loan.overdue_summary_sent")) == 1


def test_a_returned_loan_is_not_reminded(app, office, teacher, frozen_clock):
    asset = make_asset(office)
    lend(office, asset, teacher, due_on=date(2026, 11, 25))
    with write_intent():
        loans.check_in(db.session, office, asset.id)
        report = loans.send_loan_reminders(db.session, frozen_clock.now + timedelta(days=2))
        db.session.commit()
    assert report.borrowers_reminded == 0 and report.overdue_count == 0


# CSV import --------------------------------------------------------------------------------------------

GOOD_ROWS = "CAM-100,Camera 100,camera,Canon,EOS,SN1,,yes,Year 3,\nLAP-100,Laptop 100,Laptop,Dell,Latitude,SN2,,,Office,\n"
HEADER = "tag,name,kind,make,model,serial,imei,recording_capable,home_location,notes\n"


def test_import_is_all_or_nothing_and_names_each_bad_row(app, office):
    make_asset(office, tag="CAM-EXISTS")
    bad = (
        HEADER
        + GOOD_ROWS
        + "CAM-EXISTS,Duplicate of a stored tag,camera,,,,,,,\n"
        + "MOB-1,Work mobile,work_mobile,,,,123,,,\n"
        + ",No tag,spaceship,,,,,maybe,,\n"
        + "CAM-100,Same tag twice,camera,,,,,,,\n"
    )
    with write_intent(), pytest.raises(asset_csv.ImportRefused) as refused:
        asset_csv.import_assets(db.session, office, bad)
    db.session.commit()  # what a route does with keep_changes: only the audited refusal is kept
    problems = {p.row: str(p) for p in refused.value.problems}
    assert sorted(problems) == [4, 5, 6, 7]
    assert "an asset with the tag CAM-EXISTS already exists" in problems[4]
    assert problems[5].startswith("Row 5 (MOB-1): imei: That is 3 digits")
    assert "tag: Enter the asset tag" in problems[6] and "kind: Choose" in problems[6] and "recording_capable" in problems[6]
    assert "CAM-100 is also on row 2" in problems[7]
    assert refused.value.message == "Nothing was imported: 4 rows need correcting."
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SchoolAsset)) == 1
    assert json.loads(_actions("asset.import_refused")[-1].details)["bad_rows"] == [4, 5, 6, 7]

    with write_intent():
        created = asset_csv.import_assets(db.session, office, HEADER + GOOD_ROWS)
        db.session.commit()
    assert [a.tag for a in created] == ["CAM-100", "LAP-100"]
    assert created[1].kind == "laptop" and created[1].recording_capable is True
    assert len(_actions("asset.created")) == 3 and json.loads(_actions("asset.imported")[-1].details) == {"count": 2}


def test_import_refuses_an_imei_already_registered_without_saying_whose(app, office):
    owner = make_user(name="Mrs Secret Owner")
    imei = make_imei()
    make_device(owner, imei1=imei)
    text = HEADER + f"MOB-9,Trips mobile,work_mobile,,,,{imei},,,\n"
    with write_intent(), pytest.raises(asset_csv.ImportRefused) as refused:
        asset_csv.import_assets(db.session, office, text)
    db.session.rollback()
    message = str(refused.value.problems[0])
    assert f"ending {imei[-4:]} is already registered" in message and "Secret" not in message and imei not in message


def test_import_reports_a_bad_header(app, office):
    with write_intent(), pytest.raises(asset_csv.ImportRefused) as refused:
        asset_csv.import_assets(db.session, office, "tag,title,colour\nCAM-1,x,y\n")
    db.session.rollback()
    assert "must include name, kind" in str(refused.value.problems[0])
    assert "Unknown columns: title, colour" in str(refused.value.problems[0])


def test_formula_cells_are_guarded():
    assert [csv_safe.guard_cell(v) for v in ("=1+1", "+44", "-3", "@SUM(A1)", "\tx", "\rx", "plain", 5)] == [
        "'=1+1",
        "'+44",
        "'-3",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "plain",
        "5",
    ]


# Stock-takes ------------------------------------------------------------------------------------------


def test_stocktake_classifies_present_missing_on_loan_and_unexpected(app, office, teacher, frozen_clock):
    make_asset(office, tag="S-PRESENT", home_location="Year 3")
    lent = make_asset(office, tag="S-LENT", home_location="Year 3")
    missing = make_asset(office, tag="S-MISSING", home_location="Year 3")
    make_asset(office, tag="S-ELSEWHERE", home_location="Hall")
    retired = make_asset(office, tag="S-RETIRED", home_location="Year 3")
    lent_present = make_asset(office, tag="S-LENT-HERE", home_location="Year 3")
    loan = lend(office, lent, teacher)
    lend(office, lent_present, teacher)
    with write_intent():
        assets.retire_asset(db.session, office, db.session.get(SchoolAsset, retired.id))
        db.session.commit()

    frozen_clock.advance(hours=1)
    with write_intent():
        take = stocktakes.start_stocktake(db.session, office, "Year 3")
        db.session.commit()
    with write_intent(), pytest.raises(Conflict, match="still open"):
        stocktakes.start_stocktake(db.session, office, "")
    db.session.rollback()

    for typed in ("S-PRESENT", "https://lanyard.test/t/S-ELSEWHERE", "nope-1", "s-lent-here"):
        with write_intent():
            result = stocktakes.record_scan(db.session, office, take.id, typed)
            db.session.commit()
        assert result.created
    with write_intent():
        again = stocktakes.record_scan(db.session, office, take.id, "s-present")
        db.session.commit()
    assert not again.created and again.expected and again.message.startswith("Already scanned")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StockTakeScan)) == 4
    assert len(_actions("stocktake.scanned")) == 4

    with write_intent():
        counts = stocktakes.close_stocktake(db.session, office, take.id)
        db.session.commit()
    assert counts == {"present": 2, "missing": 1, "on_loan": 1, "unexpected": 2}
    report = stocktakes.stocktake_report(db.session, db.session.get(type(take), take.id))
    assert [r.tag for r in report["present"]] == ["S-LENT-HERE", "S-PRESENT"]
    assert [r.tag for r in report["missing"]] == [missing.tag]
    assert [(r.tag, r.borrower.display_name, r.loaned_since) for r in report["on_loan"]] == [
        (lent.tag, "Mr Teacher", loan.out_at)
    ]
    assert sorted(r.tag for r in report["unexpected"]) == ["NOPE-1", "S-ELSEWHERE"]
    db.session.expire_all()
    audited = {a.tag: a.last_audited_at for a in db.session.scalars(sa.select(SchoolAsset))}
    assert audited["S-PRESENT"] == frozen_clock.now and audited["S-ELSEWHERE"] == frozen_clock.now
    assert audited["S-MISSING"] is None and audited["S-LENT"] is None
    assert json.loads(_actions("stocktake.closed")[-1].details) == counts

    with write_intent(), pytest.raises(Conflict, match="closed"):
        stocktakes.record_scan(db.session, office, take.id, "S-MISSING")
    db.session.rollback()
    with write_intent(), pytest.raises(Conflict, match="closed"):
        stocktakes.close_stocktake(db.session, office, take.id)
    db.session.rollback()
    history = assets.asset_history(db.session, db.session.get(SchoolAsset, missing.id))
    assert any(entry.kind == "stocktake" and "missing" in entry.text for entry in history)


# IMEIs shared by personal devices and school assets -----------------------------------------------------


def test_a_personal_imei_cannot_be_given_to_a_school_asset(app, office):
    owner = make_user(name="Mrs Private Owner")
    imei = make_imei()
    make_device(owner, imei1=imei)
    with write_intent(), pytest.raises(DuplicateImei) as refused:
        assets.create_asset(
            db.session, office, assets.AssetDetails(tag="MOB-1", name="Trips mobile", kind="work_mobile", imei=imei)
        )
    db.session.commit()  # the refusal is audited and kept
    assert "Private" not in refused.value.message and "already registered" in refused.value.message
    assert json.loads(_actions("asset.duplicate_imei_refused")[-1].details) == {"imei_last4": imei[-4:]}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SchoolAsset)) == 0


def test_a_school_imei_cannot_be_registered_as_a_personal_phone(app, office):
    imei, other = make_imei(), make_imei()
    asset = make_asset(office, tag="MOB-2", name="Site mobile", kind="work_mobile", imei=imei)
    assert asset.imei == imei
    row = db.session.get(RegisteredImei, imei)
    assert row.asset_id == asset.id and row.device_id is None
    teacher = make_user(name="Mr Phone")
    with write_intent(), pytest.raises(DuplicateImei):
        devices.register_device(
            db.session, teacher, devices.DeviceDetails(kind="smartphone", make="Apple", model="iPhone", imei1=imei)
        )
    db.session.commit()
    device = make_device(teacher, imei1=other)
    with write_intent(), pytest.raises(DuplicateImei):
        devices.update_device(
            db.session, teacher, device, devices.DeviceDetails(kind="smartphone", make="Apple", model="iPhone", imei1=imei)
        )
    db.session.rollback()
    assert len(_actions("device.duplicate_imei_refused")) == 1


def test_an_imei_row_has_exactly_one_holder(app, office):
    with write_intent():
        db.session.add(RegisteredImei(imei=make_imei(), slot=1))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_changing_and_removing_an_assets_imei_frees_it(app, office):
    first, second = make_imei(), make_imei()
    asset = make_asset(office, tag="MOB-3", name="Mobile", kind="work_mobile", imei=first)
    with write_intent():
        changed = assets.update_asset(
            db.session, office, asset, assets.AssetDetails(tag="MOB-3", name="Mobile", kind="work_mobile", imei=second)
        )
        db.session.commit()
    assert changed == ["imei"] and db.session.get(RegisteredImei, first) is None
    make_device(make_user(), imei1=first)  # the old number is free again
    assert _actions("asset.updated")[-1].details == '{"fields":["imei"]}'


def test_only_work_mobiles_and_tablets_have_an_imei(app, office):
    with write_intent(), pytest.raises(Exception) as refused:
        assets.create_asset(db.session, office, assets.AssetDetails(tag="CAM-9", name="Camera", kind="camera", imei=make_imei()))
    db.session.rollback()
    assert refused.value.field_errors["imei"][0].startswith("Only work mobiles and tablets")


# Assets and history ---------------------------------------------------------------------------------------


def test_history_has_loans_returns_edits_and_other_features(app, office, teacher, monkeypatch):
    asset = make_asset(office, tag="HIST-1", name="Camera")
    lend(office, asset, teacher, purpose="Sports day")
    with write_intent():
        loans.check_in(db.session, office, asset.id, condition="Fine")
        assets.update_asset(db.session, office, asset, assets.AssetDetails(tag="HIST-1", name="Camera (Year 4)", kind="camera"))
        db.session.commit()
    sources = []
    monkeypatch.setattr(assets, "_history_sources", sources)
    assets.register_history_source(
        lambda session, a: [assets.HistoryEntry(clock.utcnow() + timedelta(minutes=1), "permission", f"Permission for {a.tag}")]
    )
    kinds = [entry.kind for entry in assets.asset_history(db.session, asset)]
    assert kinds[0] == "permission"
    assert sorted(kinds) == ["edit", "edit", "loan", "permission", "return"]
    texts = " | ".join(entry.text for entry in assets.asset_history(db.session, asset))
    assert "Lent to Mr Teacher by Ms Office" in texts and "(Sports day)" in texts and "received by Ms Office: Fine" in texts


def test_retiring_an_asset_on_loan_is_refused(app, office, teacher):
    asset = make_asset(office)
    lend(office, asset, teacher)
    with write_intent(), pytest.raises(Conflict, match="on loan"):
        assets.retire_asset(db.session, office, db.session.get(SchoolAsset, asset.id))
    db.session.rollback()


def test_tags_are_unique_whatever_the_case(app, office):
    make_asset(office, tag="CAM-X1")
    with write_intent(), pytest.raises(Exception) as refused:
        assets.create_asset(db.session, office, assets.AssetDetails(tag="cam-x1", name="Other", kind="camera"))
    db.session.rollback()
    assert refused.value.field_errors["tag"] == ["Another asset already has the tag CAM-X1."]


def test_search_finds_by_tag_name_and_imei_and_filters(app, office):
    imei = make_imei()
    make_asset(office, tag="MOB-77", name="Trips mobile", kind="work_mobile", imei=imei, home_location="Office")
    make_asset(office, tag="CAM-77", name="Hall camera", home_location="Hall")
    assert [a.tag for a in assets.search_assets(db.session, "mob-7")] == ["MOB-77"]
    assert [a.tag for a in assets.search_assets(db.session, "hall")] == ["CAM-77"]
    assert [a.tag for a in assets.search_assets(db.session, imei[-6:])] == ["MOB-77"]
    assert [a.tag for a in assets.search_assets(db.session, "", kind="camera")] == ["CAM-77"]
    assert [a.tag for a in assets.search_assets(db.session, "", location="Office")] == ["MOB-77"]
    assert assets.home_locations(db.session) == ["Hall", "Office"]


def test_demo_school_has_equipment_with_one_overdue_loan(app):
    from app.demo import seed_demo_school

    with write_intent():
        people = seed_demo_school(db.session, "demo-password-123")
        db.session.commit()
    # Ten from the equipment demo; the bookings demo adds the trolley's other 28 iPads, its charger, a class
    # camera and a visualiser (app/bookings/demo.py).
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SchoolAsset)) == 10 + 31
    assert len(loans.open_loans(db.session)) == 2
    overdue = loans.overdue_loans(db.session)
    assert [loan.borrower_id for loan in overdue] == [people["cdavies"].id]
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(RegisteredImei).where(RegisteredImei.asset_id.is_not(None))) == 2
    )
    assert verify_chain(db.session).ok


def test_the_reminders_command_is_safe_to_run_twice(app, office, teacher, frozen_clock):
    asset = make_asset(office, tag="CLI-1")
    lend(office, asset, teacher, due_on=date(2026, 11, 25))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["equipment", "reminders"])
    second = runner.invoke(args=["equipment", "reminders"])
    assert first.exit_code == 0 and "reminded 1 borrower(s)" in first.output
    assert second.exit_code == 0 and "reminded 0 borrower(s)" in second.output
    db.session.rollback()
    assert len(_actions("loan.reminder_sent")) == 1


def test_a_school_asset_on_loan_is_offered_and_accepted_where_personal_devices_are_not(app, office, teacher):
    from app.models import AreaRule
    from app.services import permissions
    from tests.permission_factories import committed, make_area

    admin = make_user(Role.ADMIN, name="Mr Admin")
    area = make_area(admin, name="EYFS changing area", rule=AreaRule.SCHOOL_DEVICES_ONLY.value)
    camera = make_asset(office, tag="EYFS-CAM", name="EYFS camera")
    other = make_asset(office, tag="OTHER-CAM", name="Not lent")
    assert [o.key for o in permissions.device_options(db.session, teacher) if o.school_device] == []
    lend(office, camera, teacher)
    options = {o.key: o for o in permissions.device_options(db.session, teacher) if o.school_device}
    assert list(options) == [f"asset-{camera.id}"] and f"asset-{other.id}" not in options
    assert options[f"asset-{camera.id}"].label == "EYFS camera (EYFS-CAM)"
    request = committed(
        permissions.request_permission,
        teacher,
        area,
        device_key=f"asset-{camera.id}",
        reason="learning_evidence",
        duration="one_hour",
    )
    assert request.asset_id == camera.id
    history = assets.asset_history(db.session, db.session.get(SchoolAsset, camera.id))
    assert any(e.kind == "permission" and "into EYFS changing area" in e.text for e in history)


def test_the_scheduler_reminds_from_eight_in_the_morning_school_time(app, office, teacher, frozen_clock):
    from app.scheduler import run_timed_jobs

    frozen_clock.set(datetime(2026, 7, 1, 9, tzinfo=UTC))
    lend(office, make_asset(office, tag="SCH-1"), teacher, due_on=date(2026, 7, 1))
    db.session.rollback()
    early = run_timed_jobs(db.session, datetime(2026, 7, 2, 6, 59, tzinfo=UTC), names=["equipment.loan_reminders"])  # 07:59 BST
    assert early == {"equipment.loan_reminders": None}
    later = run_timed_jobs(db.session, datetime(2026, 7, 2, 7, 0, tzinfo=UTC), names=["equipment.loan_reminders"])  # 08:00 BST
    report = later["equipment.loan_reminders"]
    assert report.borrowers_reminded == 1 and report.summary_sent and report.school_date == date(2026, 7, 2)
    again = run_timed_jobs(db.session, datetime(2026, 7, 2, 7, 0, 30, tzinfo=UTC), names=["equipment.loan_reminders"])
    assert again["equipment.loan_reminders"].borrowers_reminded == 0
