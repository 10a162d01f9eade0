"""Reports for governors and the head (issue 15, item 6): the figures, the charts and the pages.

The figures are built through the real services at known moments, on both databases: requests either
side of the clocks going forward (the last hour of 31 March in BST is still March; 00:30 BST on 1 April
is April, though it is 31 March in UTC), loans returned either side of midnight on the due date, and a
stock-take closed just after midnight. Every figure is checked exactly.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from datetime import UTC, date, datetime

import pytest
from flask import render_template_string

from app.database import write_intent
from app.extensions import db
from app.models import Role, StaffType, User
from app.services import areas, devices, permissions, policy, reports, stocktakes
from app.services.errors import ValidationFailed
from app.services.svg_charts import Series, column_chart, nice_max, row_chart
from tests.equipment_factories import lend, make_asset
from tests.factories import make_device, make_user, sign_in
from tests.permission_factories import committed, make_area
from tests.test_statement_counts import counted

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '=HYPERLINK("http://x")"><img src=x onerror=alert(1)>{{7*7}}'


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@contextmanager
def at(frozen_clock, when: datetime):
    frozen_clock.set(when)
    yield


# Periods ---------------------------------------------------------------------------------------------


def test_the_default_period_is_the_last_twelve_school_months():
    period = reports.parse_period("", "", today=date(2026, 11, 25))
    assert [m.first_day for m in (period.months[0], period.months[-1])] == [date(2025, 12, 1), date(2026, 11, 1)]
    assert len(period.months) == 12
    assert period.label == "December 2025 to November 2026"
    assert period.slug == "2025-12-to-2026-11"
    assert (period.from_value, period.to_value) == ("12/2025", "11/2026")


def test_month_bounds_are_midnight_in_the_school_zone():
    period = reports.parse_period("03/2026", "2026-04", today=date(2026, 11, 25))
    march, april = period.months
    assert march.start == utc(2026, 3, 1, 0, 0)  # GMT
    assert march.end == april.start == utc(2026, 3, 31, 23, 0)  # midnight BST
    assert april.end == utc(2026, 4, 30, 23, 0)


@pytest.mark.parametrize(
    ("first", "last", "field", "message"),
    [
        ("March", "", "from_month", "Enter the first month as MM/YYYY"),
        ("13/2026", "", "from_month", "Enter the first month as MM/YYYY"),
        ("01/2026", "2026-13", "to_month", "Enter the last month as MM/YYYY"),
        ("12/2026", "", "from_month", "cannot be after this month"),
        ("01/2026", "12/2026", "to_month", "cannot be after this month"),
        ("06/2026", "05/2026", "to_month", "same as the first month or after it"),
        ("01/2022", "02/2025", "to_month", "at most 36 months"),
        ("", "05/2026", "from_month", "Enter the first month"),
    ],
)
def test_a_wrong_period_says_what_is_wrong(first, last, field, message):
    with pytest.raises(ValidationFailed) as refused:
        reports.parse_period(first, last, today=date(2026, 11, 25))
    assert message in " ".join(refused.value.field_errors[field])


def test_one_month_and_an_empty_last_month_mean_up_to_now():
    assert reports.parse_period("11/2026", "11/2026", today=date(2026, 11, 25)).label == "November 2026"
    assert reports.parse_period("09/2026", "", today=date(2026, 11, 25)).label == "September 2026 to November 2026"


# Permissions -----------------------------------------------------------------------------------------


@pytest.fixture
def permission_history(app, frozen_clock):
    """Eight requests at known moments (one before the period), in two areas; a third area has none."""
    admin, head = make_user(Role.ADMIN), make_user(Role.APPROVER)
    teacher = make_user()
    year3, hall = make_area(admin, "Year 3 classroom"), make_area(admin, "Hall")
    make_area(admin, "Music room")
    phones = iter([make_device(teacher) for _ in range(8)])

    def ask(area, when, **extra):
        with at(frozen_clock, when):
            return committed(
                permissions.request_permission,
                teacher,
                area,
                device_key=f"personal-{next(phones).id}",
                reason="urgent_call",
                duration="one_hour",
                **extra,
            )

    def decide(asked, decision, when):
        with at(frozen_clock, when):
            committed(permissions.decide, head, asked.id, decision)

    before = ask(year3, utc(2025, 12, 31, 23, 59))  # 31 December in GMT: before the period
    decide(before, "deny", utc(2026, 1, 1, 0, 5))
    ask(hall, utc(2026, 1, 31, 23, 59))  # still January (GMT); nobody decides, so it expires
    with at(frozen_clock, utc(2026, 2, 1, 2, 0)):
        committed(permissions.expire_due, utc(2026, 2, 1, 2, 0))
    decide(ask(year3, utc(2026, 3, 31, 22, 30)), "approve", utc(2026, 3, 31, 22, 40))  # 23:30 BST: March
    decide(ask(year3, utc(2026, 3, 31, 23, 30)), "deny", utc(2026, 3, 31, 23, 40))  # 00:30 BST 1 April: April
    emergency = {"emergency": True, "emergency_reason": "A parent rang about an emergency at home."}
    quick = ask(year3, utc(2026, 6, 10, 10, 0), **emergency)
    with at(frozen_clock, utc(2026, 6, 10, 12, 0)):
        committed(permissions.review_emergency, head, quick.id, "justified")
    slow = ask(hall, utc(2026, 6, 15, 10, 0), **emergency)
    with at(frozen_clock, utc(2026, 6, 16, 16, 0)):  # 30 hours later
        committed(permissions.review_emergency, head, slow.id, "justified")
    standing_phone = next(phones)
    with at(frozen_clock, utc(2026, 8, 31, 9, 0)):
        committed(
            permissions.grant_standing_permission,
            head,
            person_id=teacher.id,
            personal_device_id=standing_phone.id,
            area_ids=[year3.id],
            starts_on=date(2026, 8, 31),
            ends_on=date(2026, 9, 30),
            reason="Medical need",
        )
    with at(frozen_clock, utc(2026, 9, 1, 9, 0)):
        used = committed(
            permissions.request_permission,
            teacher,
            year3,
            device_key=f"personal-{standing_phone.id}",
            reason="medical",
            duration="one_hour",
        )
    assert used.standing_permission_id is not None
    withdrawn = ask(hall, utc(2026, 10, 31, 23, 30))  # GMT again: still October
    with at(frozen_clock, utc(2026, 10, 31, 23, 35)):
        committed(permissions.withdraw, teacher, withdrawn.id)
    frozen_clock.set(utc(2026, 11, 25, 9, 0))
    return reports.parse_period("01/2026", "11/2026", today=date(2026, 11, 25))


def test_permission_figures_by_school_month(permission_history):
    report = reports.permission_report(db.session, permission_history)
    by_month = {bucket.first_day.month: figures for bucket, figures in report.by_month}
    F = reports.PermissionFigures
    assert by_month[1] == F(requests=1, withdrawn_or_expired=1)
    assert by_month[3] == F(requests=1, approved=1)
    assert by_month[4] == F(requests=1, denied=1)
    assert by_month[6] == F(requests=2, overrides=2, reviewed=2, reviewed_in_time=1)
    assert by_month[9] == F(requests=1, approved=1, standing=1)
    assert by_month[10] == F(requests=1, withdrawn_or_expired=1)
    assert all(by_month[m] == F() for m in (2, 5, 7, 8, 11))
    assert report.total == F(
        requests=7, approved=2, standing=1, denied=1, withdrawn_or_expired=2, overrides=2, reviewed=2, reviewed_in_time=1
    )


def test_permission_figures_by_area_include_an_area_with_no_requests(permission_history):
    report = reports.permission_report(db.session, permission_history)
    by_area = dict(report.by_area)
    assert list(by_area) == ["Hall", "Music room", "Year 3 classroom"]
    F = reports.PermissionFigures
    assert by_area["Music room"] == F()
    assert by_area["Year 3 classroom"] == F(
        requests=4, approved=2, standing=1, denied=1, overrides=1, reviewed=1, reviewed_in_time=1
    )
    assert by_area["Hall"] == F(requests=3, withdrawn_or_expired=2, overrides=1, reviewed=1)


def test_an_empty_period_has_every_month_and_area_at_zero(permission_history):
    period = reports.parse_period("02/2026", "02/2026", today=date(2026, 11, 25))
    report = reports.permission_report(db.session, period)
    assert [(b.long_label, f) for b, f in report.by_month] == [("February 2026", reports.PermissionFigures())]
    assert [name for name, f in report.by_area if f == reports.PermissionFigures()] == ["Hall", "Music room", "Year 3 classroom"]


def test_the_statement_count_does_not_grow_with_months_or_areas(app, permission_history):
    def statements(first: str, last: str) -> int:
        db.session.rollback()
        with counted(app) as seen:
            period = reports.parse_period(first, last, today=date(2026, 11, 25))
            reports.permission_report(db.session, period)
            reports.loan_report(db.session, period)
            reports.policy_report(db.session)
        return len(seen)

    short = statements("11/2026", "11/2026")
    admin = make_user(Role.ADMIN)
    for n in range(4):
        make_area(admin, f"Extra room {n}")
    assert statements("12/2023", "11/2026") == short


# Loans and losses ------------------------------------------------------------------------------------


@pytest.fixture
def loan_history(app, frozen_clock):
    office, admin = make_user(Role.OFFICE), make_user(Role.ADMIN)
    borrower = make_user()
    kit = [make_asset(office) for _ in range(4)]
    store = [make_asset(office, home_location="Store") for _ in range(2)]
    with at(frozen_clock, utc(2026, 6, 1, 9, 0)):
        on_time = lend(office, kit[0], borrower, due_on=date(2026, 6, 10))
        late = lend(office, kit[1], borrower, due_on=date(2026, 6, 10))
    with at(frozen_clock, utc(2026, 6, 10, 22, 30)):  # 23:30 BST on the due date: on time
        committed(_check_in, office, on_time.asset_id)
    with at(frozen_clock, utc(2026, 6, 10, 23, 30)):  # 00:30 BST on 11 June: late
        committed(_check_in, office, late.asset_id)
    with at(frozen_clock, utc(2026, 7, 1, 9, 0)):
        lend(office, kit[2], borrower, due_on=date(2026, 7, 3))  # never returned: overdue now
    with at(frozen_clock, utc(2026, 11, 20, 9, 0)):
        lend(office, kit[3], borrower, due_on=date(2026, 11, 30))  # out, not yet due
    with at(frozen_clock, utc(2026, 9, 30, 22, 0)):
        take = committed(stocktakes.start_stocktake, office, "Store")
        committed(stocktakes.record_scan, office, take.id, store[0].tag)
    with at(frozen_clock, utc(2026, 9, 30, 23, 30)):  # 00:30 BST on 1 October
        committed(stocktakes.close_stocktake, office, take.id)
    phone = make_device(borrower)
    with at(frozen_clock, utc(2026, 3, 31, 23, 30)):  # 00:30 BST on 1 April
        committed(devices.report_lost, borrower, phone, stolen=True)
    frozen_clock.set(utc(2026, 11, 25, 9, 0))
    assert admin
    return reports.parse_period("01/2026", "11/2026", today=date(2026, 11, 25))


def _check_in(session, office, asset_id):
    from app.services import loans

    return loans.check_in(session, office, asset_id, condition="Fine")


def test_loans_and_losses_by_school_month(loan_history):
    report = reports.loan_report(db.session, loan_history, today=date(2026, 11, 25))
    by_month = {bucket.first_day.month: figures for bucket, figures in report.by_month}
    L = reports.LoanFigures
    assert by_month[4] == L(personal_reported=1)
    assert by_month[6] == L(made=2, returned=2, returned_late=1)
    assert by_month[7] == L(made=1, overdue_now=1)
    assert by_month[10] == L(missing_at_stocktake=1)
    assert by_month[11] == L(made=1)
    assert by_month[3] == by_month[9] == L()
    assert report.overdue_now == 1
    assert report.total == L(made=4, returned=2, returned_late=1, overdue_now=1, missing_at_stocktake=1, personal_reported=1)


# Policy acceptance -----------------------------------------------------------------------------------


@pytest.fixture
def policy_history(app, frozen_clock):
    admin = make_user(Role.ADMIN)
    teachers = [make_user() for _ in range(3)]
    volunteer = make_user()
    leaver = make_user()
    with write_intent():
        db.session.get(User, volunteer.id).staff_type = StaffType.VOLUNTEER.value
        db.session.commit()
    make_device(teachers[0])
    with at(frozen_clock, utc(2026, 11, 4, 10, 0)):  # a Wednesday
        version = committed(
            policy.publish_policy,
            admin,
            policy.PolicyDraft(
                label="2026", title="Social Networking Policy", body="Text", pdf=b"", review_date=date(2027, 9, 1)
            ),
        )
        committed(policy.accept_policy, admin, version.id)
        committed(policy.declare_no_device, teachers[1])
    with at(frozen_clock, utc(2026, 11, 8, 23, 30)):  # Sunday night: still the first week
        committed(policy.accept_policy, teachers[0], version.id)
    with at(frozen_clock, utc(2026, 11, 24, 8, 0)):
        committed(policy.accept_policy, volunteer, version.id)
        committed(policy.accept_policy, leaver, version.id)
    with write_intent():
        db.session.get(User, leaver.id).is_active_account = False
        db.session.commit()
    frozen_clock.set(utc(2026, 11, 25, 9, 0))
    return version


def test_policy_acceptance_by_staff_type_and_week(policy_history):
    report = reports.policy_report(db.session, today=date(2026, 11, 25))
    assert report.policy.id == policy_history.id
    assert [(t.label, t.accepted, t.not_accepted) for t in report.by_type] == [("Employee", 2, 2), ("Volunteer", 1, 0)]
    assert (report.accepted, report.not_accepted, report.people) == (3, 2, 5)
    assert [(w.first_day, n) for w, n in report.weeks] == [
        (date(2026, 11, 2), 2),
        (date(2026, 11, 9), 0),
        (date(2026, 11, 16), 0),
        (date(2026, 11, 23), 1),  # the leaver's acceptance is not counted
    ]
    assert report.accepted_before_weeks == 0
    assert (report.phones_registered, report.declared_none, report.neither) == (1, 1, 3)


def test_without_a_policy_only_the_phones_are_reported(app):
    make_device(make_user())
    make_user()
    report = reports.policy_report(db.session)
    assert report.policy is None and report.by_type == [] and report.weeks == []
    assert (report.phones_registered, report.declared_none, report.neither) == (1, 0, 1)


# Charts ----------------------------------------------------------------------------------------------


def _render(chart) -> str:
    from flask import current_app

    with current_app.test_request_context():
        return render_template_string('{% from "_chart.html" import chart %}{{ chart(c) }}', c=chart)


def _svg(chart) -> ET.Element:
    text = _render(chart)
    assert "style=" not in text and "<script" not in text.lower()
    return ET.fromstring(text)  # noqa: S314 (our own template's output)


def test_a_column_chart_is_an_accessible_image_with_a_bar_for_every_figure(app):
    chart = column_chart(
        "c1",
        "Requests by month",
        "Seven requests, most in June.",
        ["Jan", "Feb", "Mar"],
        [Series("Approved", [1, 0, 4]), Series("Denied", [2, 1, 0])],
        stacked=True,
        sublabels=["2026", "", ""],
        y_label="Requests",
    )
    svg = _svg(chart)
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == "c1-title c1-desc"
    assert svg.get("viewBox").startswith("0 0 480 ") and svg.get("width") == "100%"
    assert svg.find(f"{SVG}title").text == "Requests by month"
    assert svg.find(f"{SVG}desc").text == "Seven requests, most in June."
    bars = [r for r in svg.iter(f"{SVG}rect") if "chart-bar" in (r.get("class") or "")]
    assert len(bars) == 6
    assert [b.find(f"{SVG}title").text for b in bars[:2]] == ["Jan, Approved: 1", "Jan, Denied: 2"]
    assert bars[1].get("fill") == "url(#c1-p1)"  # the second series has its pattern, not only a colour
    assert svg.find(f".//{SVG}pattern[@id='c1-p1']") is not None
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert {"Jan", "Feb", "Mar", "2026", "Requests", "Approved", "Denied"} <= set(texts)
    assert texts.count("3") >= 2  # the totals of Jan (3) and the axis tick 3


def test_bar_heights_follow_the_figures(app):
    svg = _svg(column_chart("c2", "t", "d", ["a", "b"], [Series("Loans", [2, 4])]))
    heights = [float(r.get("height")) for r in svg.iter(f"{SVG}rect") if "chart-bar" in (r.get("class") or "")]
    assert heights[1] == pytest.approx(2 * heights[0])
    assert nice_max(0) == 1 and nice_max(3) == 4 and nice_max(7) == 10 and nice_max(13) == 20 and nice_max(450) == 500


def test_a_hostile_area_name_is_only_text_in_the_chart(app):
    chart = row_chart("c3", f"By area {HOSTILE}", f"{HOSTILE}: 2 requests", [HOSTILE, "Hall"], [Series("Approved", [2, 1])])
    text = _render(chart)
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text and "49" not in text
    svg = ET.fromstring(text)  # noqa: S314 (our own template's output)
    assert HOSTILE in [t.text for t in svg.iter(f"{SVG}text")]
    assert svg.find(f"{SVG}title").text == f"By area {HOSTILE}"
    assert len([r for r in svg.iter(f"{SVG}rect") if "chart-bar" in (r.get("class") or "")]) == 2


# Pages and exports -----------------------------------------------------------------------------------


def test_staff_are_refused_and_a_governor_reads_the_reports(client, permission_history):
    sign_in(client, make_user())
    assert client.get("/reports").status_code == 403
    assert client.get("/reports/permissions.csv").status_code == 403
    governor = client.application.test_client()
    sign_in(governor, make_user(Role.GOVERNOR))
    page = governor.get("/reports?from_month=01/2026&to_month=11/2026")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for heading in ("Permissions by month and by area", "Loans and losses", "Policy acceptance"):
        assert f">{heading}</h2>" in text
    assert '<caption id="permissions-month-caption">Permission requests by month, January 2026 to November 2026</caption>' in text
    assert text.count('role="img"') == 5  # by month, by area, loans, losses, phones (no policy is published here)
    assert "counted as an approved request" in text
    assert "Printed on 25/11/2026" in text and page.headers["Cache-Control"] == "no-store"


def test_a_wrong_period_keeps_what_was_typed(client, app):
    sign_in(client, make_user(Role.APPROVER))
    page = client.get("/reports?from_month=13/2026&to_month=02/2026")
    assert page.status_code == 422
    text = page.get_data(as_text=True)
    assert 'value="13/2026"' in text and 'value="02/2026"' in text
    assert "Enter the first month as MM/YYYY" in text and 'aria-invalid="true"' in text
    assert 'role="img"' not in text
    assert client.get("/reports/loans.csv?from_month=nonsense").status_code == 422


def test_the_csv_exports_are_counts_named_by_period_and_guarded(app, client, frozen_clock, permission_history):
    admin = make_user(Role.ADMIN)
    with at(frozen_clock, utc(2026, 11, 25, 9, 0)):
        committed(areas.create_area, admin, name=HOSTILE)
    sign_in(client, make_user(Role.OFFICE))
    answer = client.get("/reports/permissions.csv?from_month=01/2026&to_month=11/2026")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="permissions-report-2026-01-to-2026-11.csv"'
    assert answer.headers["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["by", "month_or_area", "requests"]
    assert ["month", "2026-06", "2", "0", "0", "0", "0", "0", "2", "2", "1"] in rows
    assert ["area", "'" + HOSTILE, "0", "0", "0", "0", "0", "0", "0", "0", "0"] in rows
    assert rows[-1][:3] == ["total", "January 2026 to November 2026", "7"]
    loans_csv = client.get("/reports/loans.csv")
    assert loans_csv.headers["Content-Disposition"] == 'attachment; filename="loans-report-2025-12-to-2026-11.csv"'
    policy_csv = client.get("/reports/policy.csv")
    assert policy_csv.headers["Content-Disposition"] == 'attachment; filename="policy-acceptance-none-2026-11-25.csv"'
    assert "phones,neither," in policy_csv.get_data(as_text=True)


def test_a_hostile_area_name_is_escaped_in_the_page(app, client, frozen_clock):
    admin = make_user(Role.ADMIN)
    committed(areas.create_area, admin, name=HOSTILE)
    sign_in(client, admin)
    text = client.get("/reports").get_data(as_text=True)
    assert "<img src=x" not in text and "49" not in text.split("<main")[1].split("</main>")[0].replace("2049", "")
    assert text.count("&lt;img src=x onerror=alert(1)&gt;") >= 3  # chart title of a bar, its label, the table


def test_reports_are_in_the_navigation_for_their_readers(client, app):
    sign_in(client, make_user(Role.GOVERNOR))
    assert 'href="/reports"' in client.get("/more").get_data(as_text=True)
