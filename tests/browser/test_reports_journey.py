"""Reports in Chromium: the governor of the demo school opens Reports from "More" on a phone, reads each
section's chart and table, chooses another period (and is told what is wrong with a bad one), and prints
the page (print media: the navigation hidden, the school, the period and the date in a header)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from app.clock import local_today
from app.database import write_intent
from app.demo import DEMO_DOMAIN, seed_demo_school
from app.extensions import db
from tests.browser.conftest import sign_in_page
from tests.browser.test_accessibility import _violations

PASSWORD = "demo password for reports"


def test_the_governor_reads_prints_and_narrows_the_reports(live_server, new_phone, tmp_path: Path):
    with live_server.app_context(), write_intent():
        seed_demo_school(db.session, PASSWORD)
        db.session.commit()
    today = local_today()

    page = new_phone().new_page()
    sign_in_page(page, f"governor@{DEMO_DOMAIN}", PASSWORD)
    page.get_by_role("link", name="More", exact=True).click()
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()
    for name in ("Permissions by month and by area", "Loans and losses", "Policy acceptance"):
        expect(page.get_by_role("heading", name=name, level=2)).to_be_visible()

    # Each chart is one image with its summary as its name; the same figures are in a table.
    by_month = page.get_by_role("img", name=re.compile(r"^Permission requests by month"))
    expect(by_month).to_be_visible()
    assert page.evaluate("() => document.querySelector('svg.chart').getBoundingClientRect().width") <= 360
    month_table = page.get_by_role("table", name=re.compile(r"^Permission requests by month"))
    expect(month_table.get_by_role("columnheader", name="Emergency overrides")).to_be_visible()
    total = month_table.locator("tfoot tr")
    expect(total.get_by_role("rowheader")).to_have_text("Total")
    expect(total.locator("td").first).to_have_text("14")  # the demo's fourteen requests
    area_table = page.get_by_role("table", name=re.compile(r"^Permission requests by area"))
    expect(area_table.get_by_role("row", name=re.compile(r"^EYFS unit 0 0"))).to_be_visible()  # an area with none
    loans = page.get_by_role("table", name=re.compile(r"^Loans and losses by month"))
    expect(loans.locator("tfoot td").nth(2)).to_have_text("2")  # returned late
    expect(page.get_by_role("table", name=re.compile(r"^Policy acceptance by staff type"))).to_contain_text("Employee")
    expect(page.get_by_text("The office sees whose loan or device it was")).to_be_visible()
    assert page.get_by_role("link", name="Coverage").count() == 0  # a governor sees counts, not the lists of names
    assert _violations(page) == []

    # Printing: the header with the school, the period and today's date; no navigation, no form.
    page.set_viewport_size({"width": 794, "height": 1123})
    page.emulate_media(media="print")
    header = page.locator(".print-header")
    expect(header).to_be_visible()
    expect(header).to_contain_text(f"Printed on {today:%d/%m/%Y}")
    expect(header).to_contain_text("Lanyard School")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    expect(page.get_by_role("button", name="Show the reports")).to_be_hidden()
    fill = page.evaluate("() => getComputedStyle(document.querySelector('.chart-fill-0')).fill")
    assert fill == "rgb(0, 0, 0)"
    page.screenshot(path=str(tmp_path / "reports-print.png"), full_page=True)
    assert (tmp_path / "reports-print.png").stat().st_size > 10_000
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 360, "height": 740})

    # A bad month is refused with the reason, and what was typed is kept.
    page.get_by_label("From (month)").fill("13/2026")
    page.get_by_role("button", name="Show the reports").click()
    expect(page.get_by_label("From (month)")).to_have_value("13/2026")
    expect(page.get_by_text("Enter the first month as MM/YYYY, like 09/2026.").first).to_be_visible()
    assert page.get_by_role("img").count() == 0
    assert _violations(page) == []

    # One month: this one.
    page.get_by_label("From (month)").fill(f"{today:%m/%Y}")
    page.get_by_label("To (month)").fill("")
    page.get_by_role("button", name="Show the reports").click()
    expect(page.get_by_role("table", name=f"Permission requests by month, {today:%B %Y}")).to_be_visible()
    expect(page.get_by_role("link", name="Download the permission figures (CSV)")).to_have_attribute(
        "href", f"/reports/permissions.csv?from_month={today:%m/%Y}&to_month={today:%m/%Y}"
    )
