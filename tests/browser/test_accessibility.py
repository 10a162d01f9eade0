"""axe-core (WCAG 2.2 AA) on every page, light and dark, at 360 px and at desktop width.

The page list is checked against the app's own URL map, so a new page without an entry here fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.exceptions import NotFound

from app.database import write_intent
from app.demo import DEMO_DOMAIN, seed_demo_school
from app.extensions import db
from app.models import Area, Booking, Kit, Loan, PersonalDevice, SchoolAsset, User
from app.services import accounts, permissions, stocktakes
from tests.browser.conftest import sign_in_page

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
PASSWORD = "demo password for a11y"

# Who visits which pages; {device}, {person} and {token} come from the demo school.
PAGES: dict[str | None, list[str]] = {
    None: ["/sign-in", "/forgot-password", "/privacy", "/offline", "/set-password/{token}", "/no-such-page"],
    "head": ["/", "/more", "/notices", "/approvals", "/approvals/{request}", "/now", "/standing", "/cover"],
    "bclarke": [
        "/",
        "/devices",
        "/devices/new",
        "/devices/{device}",
        "/devices/{device}/edit",
        "/devices/{device}/report-lost",
        "/notices",
        "/more",
        "/scan",
        "/notifications",
        "/my-data",
        "/account",
        "/account/tokens",
        "/account/passkeys",
        "/admin/staff",
        "/a/{poster}",
        "/a/out-of-date-poster",
        "/requests",
        "/requests/{request}",
        "/my-loans",
        "/loans/{loan}/terms",
        "/t/CAM-001",
        "/policy",
        "/report-a-concern",
        "/bookings",
        "/bookings/new",
        "/bookings/{booking}/cancel",
        "/bookings/week",
        "/bookings/week/asset/{bookable}",
        "/bookings/week/kit/{kit}",
        "/bookings/week/kind/camera",
        "/t/KIT-TROLLEY-1",
    ],
    "office": [
        "/",
        "/office/devices",
        "/office/devices/{device}",
        "/audit",
        "/audit/digest",
        "/equipment",
        "/equipment/new",
        "/equipment/{asset}",
        "/equipment/{asset}/edit",
        "/equipment/{asset}/retire",
        "/equipment/{asset}/check-out",
        "/equipment/{loaned}/check-in",
        "/equipment/loans",
        "/equipment/overdue",
        "/equipment/labels",
        "/equipment/scan",
        "/equipment/import",
        "/equipment/stocktakes",
        "/equipment/stocktakes/{closed_stocktake}",
        "/equipment/stocktakes/{stocktake}",
        "/equipment/stocktakes/{stocktake}/close",
        "/t/CAM-001",
        "/coverage",
        "/policy/acceptances",
        "/bookings/new",
        "/bookings/day",
        "/bookings/kits",
        "/bookings/kits/{kit}",
        "/bookings/kits/{kit}/retire",
        "/t/KIT-TROLLEY-1",
        "/equipment/kits/{kit}/check-out",
        "/equipment/kits/{kit}/check-in",
        "/bookings/week/kit/{kit}",
    ],
    "admin": [
        "/admin/staff",
        "/admin/staff/invite",
        "/admin/staff/import",
        "/admin/provisioning",
        "/admin/staff/{person}",
        "/admin/staff/{person}/link",
        "/admin/staff/{person}/deactivate",
        "/admin/areas",
        "/admin/areas/new",
        "/admin/areas/{area}",
        "/admin/areas/{area}/poster",
        "/admin/areas/{area}/rotate",
        "/admin/areas/posters",
        "/admin/settings",
        "/admin/sso",
        "/admin/policy",
    ],
    "governor": ["/reports"],
}
# GET endpoints that are not pages a person reads.
NOT_PAGES = {
    "static": "files",
    "main.manifest": "JSON manifest",
    "main.service_worker": "script",
    "main.healthz": "health check",
    "main.school_logo": "image",
    "main.my_data_download": "JSON download",
    "policy.document": "the policy's PDF",
    "audit_log.export": "CSV download",
    "audit_log.names": "JSON suggestions for the name boxes (checked in test_audit_log_reading.py)",
    "devices.lost": "checked in the J1 journey (needs a lost device)",
    "equipment.find": "redirect to the label's page",
    "equipment.import_template": "CSV download",
    "equipment.export_assets": "CSV download",
    "equipment.export_loans": "CSV download",
    "equipment.stocktake_csv": "CSV download",
    "push.remove": "needs a push subscription; its page is the shared confirm.html, checked on the other confirmation pages",
    "auth.revoke_token": "needs an API token; its page is the shared confirm.html, checked on the other confirmation pages",
    "auth.passkey_remove": "needs a passkey; its page is the shared confirm.html, checked on the other confirmation pages",
    "sso.callback": "the provider's return: checked in test_sso_journey.py (needs a running provider)",
    "provisioning.staff_import_template": "CSV download",
    "reports.permissions_csv": "CSV download",
    "reports.loans_csv": "CSV download",
    "reports.policy_csv": "CSV download",
}
# The SCIM endpoint is JSON for identity systems, not pages.
NOT_PAGES.update(
    {
        rule: "SCIM JSON"
        for rule in (
            "scim.service_provider",
            "scim.resource_types",
            "scim.resource_type",
            "scim.schemas",
            "scim.schema",
            "scim.list_users",
            "scim.get_user",
            "scim.list_groups",
            "scim.get_group",
            "scim.unknown_endpoint",
        )
    }
)


SAMPLE_IDS = {
    "device": 1,
    "person": 1,
    "token": "x",
    "area": 1,
    "poster": "x",
    "request": 1,
    "asset": 1,
    "loaned": 1,
    "loan": 1,
    "stocktake": 1,
    "closed_stocktake": 2,
    "booking": 1,
    "kit": 1,
    "bookable": 1,
}


def _fill(path: str, ids: dict) -> str:
    return path.format(**ids)


def test_every_page_is_in_the_accessibility_list(live_server):
    app = live_server.app
    adapter = app.url_map.bind("localhost")
    covered = set()
    for paths in PAGES.values():
        for path in paths:
            try:
                endpoint, _args = adapter.match(_fill(path, SAMPLE_IDS), method="GET")
            except NotFound:
                assert path == "/no-such-page", f"{path} is in the list but the app has no such page"
            else:
                covered.add(endpoint)
    pages = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and not rule.rule.startswith("/api/") and rule.endpoint not in NOT_PAGES
    }
    assert pages - covered == set(), "pages without an accessibility check"


def _seed(live_server) -> dict:
    with live_server.app_context(), write_intent():
        seed_demo_school(db.session, PASSWORD)
        person = db.session.scalar(sa.select(User).where(User.email == f"bclarke@{DEMO_DOMAIN}"))
        device = db.session.scalar(sa.select(PersonalDevice).where(PersonalDevice.owner_id == person.id))
        token = accounts.issue_password_token(db.session, None, person)
        area = db.session.scalar(sa.select(Area).where(Area.name == "Year 3 classroom"))
        request = permissions.request_permission(
            db.session, person, area, device_key=f"personal-{device.id}", reason="urgent_call", duration="one_hour"
        )
        office = db.session.scalar(sa.select(User).where(User.email == f"office@{DEMO_DOMAIN}"))
        closed = stocktakes.start_stocktake(db.session, office, "iPad trolley")
        stocktakes.record_scan(db.session, office, closed.id, "IPAD-001")
        stocktakes.close_stocktake(db.session, office, closed.id)
        open_take = stocktakes.start_stocktake(db.session, office, "")
        stocktakes.record_scan(db.session, office, open_take.id, "CAM-002")
        db.session.commit()
        return {
            "device": device.id,
            "person": person.id,
            "token": token,
            "area": area.id,
            "poster": area.poster_token,
            "request": request.id,
            "asset": db.session.scalar(sa.select(SchoolAsset.id).where(SchoolAsset.tag == "CAM-002")),
            "loaned": db.session.scalar(sa.select(SchoolAsset.id).where(SchoolAsset.tag == "CAM-001")),
            "loan": db.session.scalar(
                sa.select(Loan.id).join(SchoolAsset, Loan.asset_id == SchoolAsset.id).where(SchoolAsset.tag == "CAM-001")
            ),
            "stocktake": open_take.id,
            "closed_stocktake": closed.id,
            "booking": db.session.scalar(sa.select(Booking.id).where(Booking.booked_for_id == person.id)),
            "kit": db.session.scalar(sa.select(Kit.id)),
            "bookable": db.session.scalar(sa.select(SchoolAsset.id).where(SchoolAsset.bookable_by.is_not(None)).limit(1)),
        }


def _violations(page) -> list[str]:
    # Evaluated through the DevTools protocol, so the page's strict CSP stays on while axe runs.
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", WCAG_TAGS
    )
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}" for v in result["violations"]]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [360, 1280])
def test_no_wcag_violations(live_server, chromium, scheme, width):
    assert AXE.exists(), "axe-core is missing: run make install-dev (npm install --prefix tests/browser)"
    ids = _seed(live_server)
    problems: list[str] = []
    for who, paths in PAGES.items():
        context = chromium.new_context(
            viewport={"width": width, "height": 800}, color_scheme=scheme, base_url=live_server.url, locale="en-GB"
        )
        page = context.new_page()
        if who:
            sign_in_page(page, f"{who}@{DEMO_DOMAIN}", PASSWORD)
        for path in paths:
            page.goto(_fill(path, ids))
            problems += [f"{path} as {who or 'visitor'}: {v}" for v in _violations(page)]
        if who == "bclarke":
            page.goto("/devices/new")
            page.get_by_role("button", name="Register device").click()
            problems += [f"/devices/new with errors: {v}" for v in _violations(page)]
        context.close()
    assert problems == []


def test_the_checker_does_find_a_violation(live_server, chromium):
    """Guard against a silent axe: a page with an unlabelled control must fail."""
    context = chromium.new_context(base_url=live_server.url)
    page = context.new_page()
    page.goto("/privacy")
    page.evaluate("document.querySelector('main').appendChild(document.createElement('input'))")
    found = _violations(page)
    context.close()
    assert any(v.startswith("label") for v in found), found
