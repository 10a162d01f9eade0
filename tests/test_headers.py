"""Response headers (DESIGN.md section 10) on every kind of page.

The main test walks the app's own URL map: every GET route is asked for by the people who may see it
(from the access matrix), with ids of a seeded school, and its answer's status and headers are checked.
A new GET route without an entry in GETS fails, so nobody adds a page or an API call without it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.demo import DEMO_DOMAIN, seed_demo_school
from app.extensions import db
from app.models import Area, Booking, Kit, Loan, PersonalDevice, SchoolAsset, User
from app.services import accounts, devices, permissions, school_logo, stocktakes
from tests.factories import sign_in
from tests.test_access_matrix import ACCESS

PASSWORD = "demo password for headers"


class Get(NamedTuple):
    """A GET to make: the path ({names} are ids from the seeded school) and the status it must answer.

    ``visitor`` is the status for someone signed out (public routes only; the signed-in status is
    ``status``); ``who`` names the demo person to ask as, where the access matrix's default would not do.
    """

    path: str
    status: int = 200
    visitor: int | None = None
    who: str | None = None


GETS: dict[str, Get] = {
    # Public: asked for signed out and signed in.
    "static": Get("/static/css/app.css", visitor=200),
    "main.manifest": Get("/manifest.webmanifest", visitor=200),
    "main.service_worker": Get("/sw.js", visitor=200),
    "main.offline": Get("/offline", visitor=200),
    "main.privacy": Get("/privacy", visitor=200),
    "main.healthz": Get("/healthz", visitor=200),
    "main.school_logo": Get("/school-logo/{logo}", visitor=200),
    "auth.sign_in": Get("/sign-in", 302, visitor=200),
    "auth.set_password": Get("/set-password/{token}", visitor=200),
    # No provider is configured here: the callback of one is not found (tests/test_sso.py covers the rest).
    "sso.callback": Get("/sign-in/oidc/microsoft/callback", 404, visitor=404),
    "mail.forgot_password": Get("/forgot-password", visitor=200),
    "api.openapi_json": Get("/api/v1/openapi.json", visitor=200),
    "api.push_key": Get("/api/v1/push-subscriptions/key", visitor=200),
    # Any signed-in person (the demo's Mr B Clarke, who owns the device, request and loan).
    "main.home": Get("/"),
    "main.notices": Get("/notices"),
    "main.more": Get("/more"),
    "permissions.scan": Get("/scan"),
    "main.my_data": Get("/my-data"),
    "main.my_data_download": Get("/my-data/download"),
    "auth.account": Get("/account"),
    "auth.tokens": Get("/account/tokens"),
    "auth.passkey_list": Get("/account/passkeys"),
    "push.settings": Get("/notifications"),
    "devices.mine": Get("/devices"),
    "devices.add": Get("/devices/new"),
    "devices.show": Get("/devices/{device}"),
    "devices.edit": Get("/devices/{device}/edit"),
    "devices.report_lost": Get("/devices/{device}/report-lost"),
    "devices.lost": Get("/devices/{lost_device}/lost", who="eevans"),
    "permissions.ask": Get("/a/{poster}"),
    "permissions.my_requests": Get("/requests"),
    "permissions.request_status": Get("/requests/{request}"),
    "equipment.my_loans": Get("/my-loans"),
    "equipment.scanned": Get("/t/CAM-001"),
    "api.me": Get("/api/v1/me"),
    "api.me_export": Get("/api/v1/me/export"),
    "api.list_areas": Get("/api/v1/areas"),
    "api.list_devices": Get("/api/v1/devices"),
    "api.get_device": Get("/api/v1/devices/{device}"),
    "api.list_loans": Get("/api/v1/loans"),
    "api.get_loan": Get("/api/v1/loans/{loan}"),
    "equipment.loan_terms_page": Get("/loans/{loan}/terms"),
    "api.list_permission_requests": Get("/api/v1/permission-requests"),
    "api.get_permission_request": Get("/api/v1/permission-requests/{request}"),
    "api.list_push_subscriptions": Get("/api/v1/push-subscriptions"),
    "api.list_standing_permissions": Get("/api/v1/standing-permissions"),
    "bookings.mine": Get("/bookings"),
    "bookings.new": Get("/bookings/new"),
    "bookings.cancel": Get("/bookings/{booking}/cancel"),
    "api.list_bookings": Get("/api/v1/bookings"),
    "api.get_booking": Get("/api/v1/bookings/{booking}"),
    "api.list_kits": Get("/api/v1/kits"),
    "api.availability": Get("/api/v1/availability?asset_id={bookable}"),
    "api.availability_week": Get("/api/v1/availability/week?kind=camera"),
    "booking_week.choose": Get("/bookings/week"),
    "booking_week.asset": Get("/bookings/week/asset/{bookable}"),
    "booking_week.kit": Get("/bookings/week/kit/{kit}"),
    "booking_week.kind": Get("/bookings/week/kind/camera"),
    # Approvers.
    "permissions.inbox": Get("/approvals"),
    "permissions.approval": Get("/approvals/{request}"),
    "permissions.now": Get("/now"),
    "permissions.standing": Get("/standing"),
    "permissions.cover": Get("/cover"),
    "api.now_board": Get("/api/v1/now"),
    # Office.
    "devices.register": Get("/office/devices"),
    "devices.office_show": Get("/office/devices/{device}"),
    "equipment.index": Get("/equipment"),
    "equipment.add": Get("/equipment/new"),
    "equipment.show": Get("/equipment/{asset}"),
    "equipment.edit": Get("/equipment/{asset}/edit"),
    "equipment.retire": Get("/equipment/{asset}/retire"),
    "equipment.check_out": Get("/equipment/{asset}/check-out"),
    "equipment.check_in": Get("/equipment/{loaned}/check-in"),
    "equipment.export_assets": Get("/equipment/export/assets.csv"),
    "equipment.export_loans": Get("/equipment/export/loans.csv"),
    "equipment.find": Get("/equipment/find?tag=CAM-001", 302),
    "equipment.import_assets": Get("/equipment/import"),
    "equipment.import_template": Get("/equipment/import/template.csv"),
    "equipment.labels": Get("/equipment/labels"),
    "equipment.loan_list": Get("/equipment/loans"),
    "equipment.overdue": Get("/equipment/overdue"),
    "equipment.scan": Get("/equipment/scan"),
    "equipment.stocktake_list": Get("/equipment/stocktakes"),
    "equipment.stocktake": Get("/equipment/stocktakes/{stocktake}"),
    "equipment.stocktake_csv": Get("/equipment/stocktakes/{closed_stocktake}/report.csv"),
    "api.list_assets": Get("/api/v1/assets"),
    "api.get_asset": Get("/api/v1/assets/{asset}"),
    "bookings.day": Get("/bookings/day"),
    "bookings.kits": Get("/bookings/kits"),
    "bookings.kit": Get("/bookings/kits/{kit}"),
    "equipment.kit_check_out": Get("/equipment/kits/{kit}/check-out"),
    "equipment.kit_check_in": Get("/equipment/kits/{kit}/check-in"),
    "bookings.retire_kit": Get("/bookings/kits/{kit}/retire"),
    "api.get_stocktake": Get("/api/v1/stocktakes/{stocktake}"),
    # Audit readers (approvers, office and admin).
    "audit_log.index": Get("/audit"),
    "audit_log.digest": Get("/audit/digest"),
    "audit_log.names": Get("/audit/names?kind=person&q=cl"),
    "audit_log.export": Get("/audit/export.csv"),
    "api.list_audit_events": Get("/api/v1/audit-events"),
    "api.latest_verification": Get("/api/v1/audit-events/verify"),
    # Admin.
    "admin.staff": Get("/admin/staff"),
    "admin.invite": Get("/admin/staff/invite"),
    "admin.person": Get("/admin/staff/{person}"),
    "admin.password_link_shown": Get("/admin/staff/{person}/link"),
    "admin.deactivate": Get("/admin/staff/{person}/deactivate"),
    "permissions.area_rotate": Get("/admin/areas/{area}/rotate"),
    "equipment.close_stocktake": Get("/equipment/stocktakes/{stocktake}/close"),
    "push.remove": Get("/notifications/999999/remove", 404),
    "auth.revoke_token": Get("/account/tokens/999999/revoke", 404),
    "auth.passkey_remove": Get("/account/passkeys/999999/remove", 404),
    "admin.settings": Get("/admin/settings"),
    "policy.read": Get("/policy"),
    "policy.concern": Get("/report-a-concern"),
    "policy.document": Get("/policy/999999/policy.pdf", 404),
    "reports.index": Get("/reports"),
    "reports.permissions_csv": Get("/reports/permissions.csv"),
    "reports.loans_csv": Get("/reports/loans.csv"),
    "reports.policy_csv": Get("/reports/policy.csv"),
    "policy.publish": Get("/admin/policy"),
    "policy.acceptances": Get("/policy/acceptances"),
    "policy.coverage": Get("/coverage"),
    "sso.rules": Get("/admin/sso"),
    "permissions.areas": Get("/admin/areas"),
    "permissions.area_new": Get("/admin/areas/new"),
    "permissions.area_edit": Get("/admin/areas/{area}"),
    "permissions.area_poster": Get("/admin/areas/{area}/poster"),
    "permissions.area_posters": Get("/admin/areas/posters"),
    "provisioning.staff_import_page": Get("/admin/staff/import"),
    "provisioning.staff_import_template": Get("/admin/staff/import/template.csv"),
    "provisioning.scim_tokens": Get("/admin/provisioning"),
    # SCIM: a signed-in person (an admin included) is refused; the refusal carries the headers too.
    "scim.service_provider": Get("/scim/v2/ServiceProviderConfig", 401, who="admin"),
    "scim.resource_types": Get("/scim/v2/ResourceTypes", 401, who="admin"),
    "scim.resource_type": Get("/scim/v2/ResourceTypes/User", 401, who="admin"),
    "scim.schemas": Get("/scim/v2/Schemas", 401, who="admin"),
    "scim.schema": Get("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", 401, who="admin"),
    "scim.list_users": Get("/scim/v2/Users", 401, who="admin"),
    "scim.get_user": Get("/scim/v2/Users/{person}", 401, who="admin"),
    "scim.list_groups": Get("/scim/v2/Groups", 401, who="admin"),
    "scim.get_group": Get("/scim/v2/Groups/staff", 401, who="admin"),
    "scim.unknown_endpoint": Get("/scim/v2/Nothing", 401, who="admin"),
}
# Who asks, by the access matrix's entry: a role's demo person, or Mr B Clarke for "signed_in".
PERSON_FOR_ROLE = {"approver": "head", "office": "office", "admin": "admin", "governor": "governor", "signed_in": "bclarke"}


def _get_rules(app) -> dict[str, str]:
    return {rule.endpoint: rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods}


def _seed() -> dict:
    """The demo school, plus what some pages need: a lost phone, a request, stock-takes, a set-password link."""
    with write_intent():
        seed_demo_school(db.session, PASSWORD)
        people = {u.email.split("@")[0]: u for u in db.session.scalars(sa.select(User).where(User.email.endswith(DEMO_DOMAIN)))}
        device = db.session.scalar(sa.select(PersonalDevice).where(PersonalDevice.owner_id == people["bclarke"].id))
        lost = db.session.scalar(sa.select(PersonalDevice).where(PersonalDevice.owner_id == people["eevans"].id))
        devices.report_lost(db.session, people["eevans"], lost, stolen=False)
        area = db.session.scalar(sa.select(Area).where(Area.name == "Year 3 classroom"))
        asked = permissions.request_permission(
            db.session, people["bclarke"], area, device_key=f"personal-{device.id}", reason="urgent_call", duration="one_hour"
        )
        closed = stocktakes.start_stocktake(db.session, people["office"], "iPad trolley")
        stocktakes.record_scan(db.session, people["office"], closed.id, "IPAD-001")
        stocktakes.close_stocktake(db.session, people["office"], closed.id)
        open_take = stocktakes.start_stocktake(db.session, people["office"], "")
        logo = school_logo.save_logo(
            db.session, people["admin"], (Path(__file__).parent / "images" / "logo-3x2.jpg").read_bytes()
        )
        loaned = db.session.scalar(sa.select(SchoolAsset).where(SchoolAsset.tag == "CAM-001"))
        ids = {
            "device": device.id,
            "lost_device": lost.id,
            "person": people["bclarke"].id,
            "token": accounts.issue_password_token(db.session, None, people["cdavies"]),
            "area": area.id,
            "poster": area.poster_token,
            "request": asked.id,
            "asset": db.session.scalar(sa.select(SchoolAsset.id).where(SchoolAsset.tag == "CAM-002")),
            "loaned": loaned.id,
            "loan": db.session.scalar(sa.select(Loan.id).where(Loan.asset_id == loaned.id, Loan.returned_at.is_(None))),
            "stocktake": open_take.id,
            "closed_stocktake": closed.id,
            "logo": logo.digest,
            "booking": db.session.scalar(sa.select(Booking.id).where(Booking.booked_for_id == people["bclarke"].id)),
            "bookable": db.session.scalar(sa.select(SchoolAsset.id).where(SchoolAsset.tag == "CAM-010")),
            "kit": db.session.scalar(sa.select(Kit.id)),
        }
        db.session.commit()
    return {"ids": ids, "people": people}


def test_every_get_route_has_a_header_entry(app):
    rules = _get_rules(app)
    assert set(rules) - set(GETS) == set(), "GET routes without an entry in GETS"
    assert set(GETS) - set(rules) == set(), "GETS entries for routes that no longer exist"


def _check_security_headers(response, where: str) -> list[str]:
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    wrong = []
    if not ("script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp):
        wrong.append(f"{where}: CSP is not strict: {csp!r}")
    if "frame-ancestors 'none'" not in csp or "object-src 'none'" not in csp:
        wrong.append(f"{where}: CSP lacks frame-ancestors/object-src 'none': {csp!r}")
    if headers.get("X-Content-Type-Options") != "nosniff":
        wrong.append(f"{where}: no nosniff")
    if headers.get("Referrer-Policy") != "same-origin":
        wrong.append(f"{where}: Referrer-Policy is {headers.get('Referrer-Policy')!r}")
    if not re.search(r"(^|,\s*)camera=\(self\)", headers.get("Permissions-Policy", "")):
        wrong.append(f"{where}: Permissions-Policy does not allow the camera for self only")
    return wrong


def _never_stored(response, where: str) -> list[str]:
    cache = response.headers.get("Cache-Control", "")
    return (
        []
        if "no-store" in [part.strip() for part in cache.split(",")]
        else [f"{where}: Cache-Control is {cache!r}, not no-store"]
    )


_POST_FORM = re.compile(r"<form\b[^>]*\bmethod=\"post\"[^>]*>(.*?)</form>", re.IGNORECASE | re.DOTALL)


def _posts_without_form_key(body: str, where: str) -> list[str]:
    """One tap, one action: every form on the page that posts carries a one-time form key."""
    return [
        f"{where}: a form that posts has no one-time form_key"
        for inner in _POST_FORM.findall(body)
        if 'name="form_key"' not in inner
    ]


def test_every_get_route_answers_with_the_security_headers(app):
    """Each GET route, asked for by each kind of person who may see it, with the status it must give."""
    school = _seed()
    ids, people = school["ids"], school["people"]
    clients = {}

    def client_for(short: str | None):
        if short not in clients:
            clients[short] = app.test_client()
            if short is not None:
                sign_in(clients[short], people[short], PASSWORD)
        return clients[short]

    wrong: list[str] = []
    for endpoint, _rule in sorted(_get_rules(app).items(), key=lambda item: item[1]):
        get = GETS[endpoint]
        path = get.path.format(**ids)
        access = {**ACCESS, "static": "public"}[endpoint]  # the matrix leaves static files out
        if access == "public":
            askers = [(None, get.visitor), (get.who or "bclarke", get.status)]
        else:
            roles = ("signed_in",) if access == "signed_in" else access
            askers = [(get.who, get.status)] if get.who else [(PERSON_FOR_ROLE[role], get.status) for role in roles]
        for short, status in askers:
            response = client_for(short).get(path)
            body = response.get_data().decode("utf-8", "replace")
            response.close()  # static files are streamed from an open file
            where = f"GET {path} ({endpoint}) as {short or 'a visitor'}"
            if response.status_code != status:
                wrong.append(f"{where}: status {response.status_code}, expected {status}")
            wrong += _check_security_headers(response, where)
            wrong += _posts_without_form_key(body, where)
            if access != "public":
                wrong += _never_stored(response, where)
            elif short is not None and people[short].display_name in body:
                # A public page drawn for a signed-in person shows their name: it is personal too.
                wrong += _never_stored(response, where)
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize(
    "path", ["/sign-in", "/offline", "/privacy", "/manifest.webmanifest", "/sw.js", "/api/v1/openapi.json", "/nowhere"]
)
def test_public_answers_carry_the_same_protections(client, path):
    response = client.get(path)
    assert response.status_code in (200, 404)
    assert _check_security_headers(response, path) == []


def test_hsts_is_sent_behind_https(client):
    assert "Strict-Transport-Security" not in client.get("/sign-in").headers
    secure = client.get("/sign-in", base_url="https://lanyard.test")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_templates_hold_no_inline_script_style_or_handlers():
    import pathlib
    import re

    templates = sorted((pathlib.Path(__file__).resolve().parent.parent / "templates").rglob("*.html"))
    assert len(templates) > 20, "the templates were not found"
    for template in templates:
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert not re.search(r"\son[a-z]+=", text), template
        assert not re.search(r"\sstyle=", text), template
        assert "<style" not in text, template
