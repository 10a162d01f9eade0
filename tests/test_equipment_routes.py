"""Equipment pages and API through the test client: who may do what, forms that keep what was typed,
scanned labels that change nothing, CSV exports guarded against formula injection."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.clock import local_today
from app.database import write_intent
from app.equipment.labels import label_url, qr_svg
from app.extensions import db
from app.models import AuditEvent, Loan, Role, SchoolAsset
from app.services import loans, stocktakes
from tests.equipment_factories import api_headers, lend, make_asset, page_csrf_token
from tests.factories import make_imei, make_user, sign_in


def _audit_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))


def _csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


@pytest.fixture
def office(app):
    return make_user(Role.OFFICE, name="Ms Office")


@pytest.fixture
def teacher(app):
    return make_user(name="Mr Teacher")


@pytest.fixture
def office_client(client, office):
    sign_in(client, office)
    return client


# Access -------------------------------------------------------------------------------------------------

OFFICE_PAGES = [
    ("get", "/equipment"),
    ("get", "/equipment/new"),
    ("post", "/equipment/new"),
    ("get", "/equipment/{asset}"),
    ("get", "/equipment/{asset}/edit"),
    ("post", "/equipment/{asset}/edit"),
    ("get", "/equipment/{asset}/retire"),
    ("post", "/equipment/{asset}/retire"),
    ("get", "/equipment/{asset}/check-out"),
    ("post", "/equipment/{asset}/check-out"),
    ("get", "/equipment/{asset}/check-in"),
    ("post", "/equipment/{asset}/check-in"),
    ("get", "/equipment/loans"),
    ("get", "/equipment/overdue"),
    ("get", "/equipment/labels"),
    ("get", "/equipment/scan"),
    ("get", "/equipment/find?tag=CAM-1"),
    ("get", "/equipment/import"),
    ("post", "/equipment/import"),
    ("get", "/equipment/import/template.csv"),
    ("get", "/equipment/export/assets.csv"),
    ("get", "/equipment/export/loans.csv"),
    ("get", "/equipment/stocktakes"),
    ("post", "/equipment/stocktakes"),
    ("get", "/equipment/stocktakes/{take}"),
    ("post", "/equipment/stocktakes/{take}/scan"),
    ("post", "/equipment/stocktakes/{take}/close"),
    ("get", "/equipment/stocktakes/{take}/report.csv"),
]
OFFICE_API = [
    ("get", "/api/v1/assets"),
    ("post", "/api/v1/assets"),
    ("get", "/api/v1/assets/{asset}"),
    ("patch", "/api/v1/assets/{asset}"),
    ("post", "/api/v1/assets/{asset}/check-out"),
    ("post", "/api/v1/assets/{asset}/check-in"),
    ("post", "/api/v1/stocktakes"),
    ("get", "/api/v1/stocktakes/{take}"),
    ("post", "/api/v1/stocktakes/{take}/scans"),
    ("post", "/api/v1/stocktakes/{take}/close"),
]


@pytest.fixture
def targets(office):
    asset = make_asset(office, tag="ACC-1")
    with write_intent():
        take = stocktakes.start_stocktake(db.session, office, "")
        db.session.commit()
    return {"asset": asset.id, "take": take.id}


def _call(client, method: str, path: str, headers=None):
    kwargs = {"headers": headers or {}}
    if method != "get" and path.startswith("/api/"):
        kwargs["json"] = {}
    elif method != "get":
        kwargs["data"] = {}
    return getattr(client, method)(path, **kwargs)


@pytest.mark.parametrize(("method", "path"), OFFICE_PAGES)
def test_staff_are_refused_the_office_pages(app, client, teacher, targets, method, path):
    sign_in(client, teacher)
    before = _audit_count()
    token = {"csrf_token": page_csrf_token(client)}
    url = path.format(**targets)
    response = client.get(url) if method == "get" else client.post(url, data=token)
    assert response.status_code == 403
    assert _audit_count() == before


@pytest.mark.parametrize(("method", "path"), [*OFFICE_PAGES, ("get", "/my-loans"), ("get", "/t/ACC-1")])
def test_anonymous_visitors_are_sent_to_sign_in(app, client, targets, method, path):
    response = _call(client, method, path.format(**targets))
    if method == "get":
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    else:
        assert response.status_code in (302, 400)  # no CSRF token: refused before anything else
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Loan)) == 0


@pytest.mark.parametrize(("method", "path"), OFFICE_API)
def test_staff_are_refused_the_office_api(app, client, teacher, targets, method, path):
    sign_in(client, teacher)
    response = _call(client, method, path.format(**targets), api_headers(client))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(("method", "path"), [*OFFICE_API, ("get", "/api/v1/loans")])
def test_anonymous_api_calls_get_401(app, client, targets, method, path):
    response = client.open(
        path.format(**targets),
        method=method.upper(),
        headers={"Accept": "application/json"},
        json={} if method != "get" else None,
    )
    assert response.status_code in (401, 403)  # 403 only where CSRF refuses first
    assert response.mimetype == "application/problem+json"
    if method == "get":
        assert response.status_code == 401


def test_staff_see_only_their_own_loans(app, client, office, teacher):
    other = make_user(name="Miss Other")
    mine = lend(office, make_asset(office, tag="MINE-1", name="My camera"), teacher)
    theirs = lend(office, make_asset(office, tag="THEIRS-1", name="Their camera"), other)
    sign_in(client, teacher)
    page = client.get("/my-loans").get_data(as_text=True)
    assert "MINE-1" in page and "THEIRS-1" not in page
    body = client.get("/api/v1/loans").get_json()
    assert [item["id"] for item in body["items"]] == [mine.id]
    assert client.get("/api/v1/loans?scope=all").status_code == 403
    assert client.get(f"/api/v1/loans/{theirs.id}").status_code == 404
    assert client.get(f"/api/v1/loans/{mine.id}").get_json()["asset"]["tag"] == "MINE-1"


def test_the_office_lists_every_loan_and_the_overdue_ones(app, office_client, office, teacher, frozen_clock):
    late = lend(office, make_asset(office, tag="LATE-1"), teacher, due_on=local_today())
    lend(office, make_asset(office, tag="FINE-1"), teacher, due_on=local_today() + timedelta(days=5))
    frozen_clock.advance(days=1)
    assert [item["asset"]["tag"] for item in office_client.get("/api/v1/loans").get_json()["items"]] == ["LATE-1", "FINE-1"]
    overdue = office_client.get("/api/v1/loans?overdue=true").get_json()["items"]
    assert [item["id"] for item in overdue] == [late.id] and overdue[0]["overdue"] is True
    page = office_client.get("/equipment/overdue").get_data(as_text=True)
    assert "LATE-1" in page and "FINE-1" not in page and "1 day overdue" in page


# Forms ------------------------------------------------------------------------------------------------


def test_asset_form_keeps_what_was_typed_and_says_what_is_wrong(app, office_client):
    token = page_csrf_token(office_client)
    response = office_client.post(
        "/equipment/new",
        data={
            "csrf_token": token,
            "tag": "bad tag!",
            "name": "Trips mobile",
            "kind": "work_mobile",
            "imei": "12345",
            "home_location": "Office",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "There is a problem" in page
    assert "Use letters, digits and dashes only" in page
    assert "That is 5 digits; an IMEI has 15" in page
    assert 'value="Trips mobile"' in page and 'value="Office"' in page and 'value="12345"' in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SchoolAsset)) == 0


def test_adding_an_asset_and_refusing_a_duplicate_imei(app, office_client, teacher):
    from tests.factories import make_device

    held = make_imei()
    make_device(teacher, imei1=held)
    token = page_csrf_token(office_client)
    ok = office_client.post(
        "/equipment/new", data={"csrf_token": token, "tag": "cam-1", "name": "Camera", "kind": "camera", "recording_capable": "y"}
    )
    assert ok.status_code == 302
    asset = db.session.scalar(sa.select(SchoolAsset).where(SchoolAsset.tag == "CAM-1"))
    assert ok.headers["Location"].endswith(f"/equipment/{asset.id}")
    refused = office_client.post(
        "/equipment/new", data={"csrf_token": token, "tag": "MOB-1", "name": "Mobile", "kind": "work_mobile", "imei": held}
    )
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "already registered in Lanyard" in page and "Mr Teacher" not in page
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "asset.duplicate_imei_refused")) == 1


def test_check_out_form_keeps_input_and_refuses_a_second_loan(app, office_client, office, teacher):
    asset = make_asset(office, tag="CO-1", name="Camera")
    token = page_csrf_token(office_client)
    page = office_client.get(f"/equipment/{asset.id}/check-out").get_data(as_text=True)
    assert "Mr Teacher" in page and 'type="date"' in page
    bad = office_client.post(
        f"/equipment/{asset.id}/check-out", data={"csrf_token": token, "borrower_id": "0", "due_on": "", "purpose": "Sports day"}
    )
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "Choose who is borrowing it." in text and "Enter the date it is due back" in text and 'value="Sports day"' in text
    due = (local_today() + timedelta(days=2)).isoformat()
    good = office_client.post(
        f"/equipment/{asset.id}/check-out",
        data={"csrf_token": token, "borrower_id": str(teacher.id), "due_on": due, "purpose": "Sports day"},
    )
    assert good.status_code == 302
    again = office_client.post(
        f"/equipment/{asset.id}/check-out", data={"csrf_token": token, "borrower_id": str(office.id), "due_on": due}
    )
    assert again.status_code == 409 and "already on loan to Mr Teacher" in again.get_data(as_text=True)
    assert "CO-1 is on loan to Mr Teacher. Check it in" in office_client.get(f"/equipment/{asset.id}/check-out").get_data(
        as_text=True
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Loan)) == 1


def test_check_in_when_not_on_loan_says_so(app, office_client, office):
    asset = make_asset(office, tag="CI-1")
    token = page_csrf_token(office_client)
    page = office_client.get(f"/equipment/{asset.id}/check-in").get_data(as_text=True)
    assert "CI-1 is not on loan, so there is nothing to check in." in page
    posted = office_client.post(f"/equipment/{asset.id}/check-in", data={"csrf_token": token})
    assert posted.status_code == 409 and "CI-1 is not on loan" in posted.get_data(as_text=True)
    api = office_client.post(f"/api/v1/assets/{asset.id}/check-in", headers=api_headers(office_client), json={})
    assert api.status_code == 409 and api.get_json()["detail"] == "CI-1 is not on loan, so there is nothing to check in."


def test_check_in_form_records_condition_and_damage(app, office_client, office, teacher):
    asset = make_asset(office, tag="CI-2")
    lend(office, asset, teacher)
    token = page_csrf_token(office_client)
    response = office_client.post(
        f"/equipment/{asset.id}/check-in", data={"csrf_token": token, "condition": "Lens cap missing", "damaged": "y"}
    )
    assert response.status_code == 302
    loan = db.session.scalar(sa.select(Loan))
    db.session.refresh(loan)
    assert loan.condition_in == "Lens cap missing" and loan.damaged and loan.asset.status == "in_repair"
    history = office_client.get(f"/equipment/{asset.id}").get_data(as_text=True)
    assert "Returned by Mr Teacher, received by Ms Office, damaged: Lens cap missing" in history


# Scanning -----------------------------------------------------------------------------------------------


def test_a_scanned_label_shows_the_fitting_action_and_changes_nothing(app, office_client, office, teacher):
    asset = make_asset(office, tag="SCAN-1", name="Scanned camera")
    before = _audit_count()
    page = office_client.get("/t/SCAN-1").get_data(as_text=True)
    assert "Scanned: what next?" in page and f'href="/equipment/{asset.id}/check-out"' in page
    lend(office, asset, teacher)
    before = _audit_count()
    page = office_client.get("/t/scan-1").get_data(as_text=True)
    assert "On loan to <strong>Mr Teacher</strong>" in page and f'href="/equipment/{asset.id}/check-in"' in page
    with write_intent():
        take = stocktakes.start_stocktake(db.session, office, "")
        db.session.commit()
    before = _audit_count()
    page = office_client.get("/t/SCAN-1").get_data(as_text=True)
    assert f"Record in stock-take #{take.id}" in page
    assert _audit_count() == before and stocktakes.scans_of(db.session, take.id) == []
    token = page_csrf_token(office_client)
    recorded = office_client.post(
        f"/equipment/stocktakes/{take.id}/scan", data={"csrf_token": token, "tag": "SCAN-1", "back": "asset"}
    )
    assert recorded.status_code == 302 and recorded.headers["Location"].endswith(f"/equipment/{asset.id}")
    assert "Already recorded in stock-take" in office_client.get("/t/SCAN-1").get_data(as_text=True)


def test_unknown_tags_and_staff_scans(app, client, office, teacher):
    asset = make_asset(office, tag="STAFF-1", name="Camera")
    lend(office, asset, teacher)
    sign_in(client, teacher)
    page = client.get("/t/STAFF-1").get_data(as_text=True)
    assert "You have it on loan" in page
    assert client.get("/t/NOPE-9").status_code == 404


def test_find_by_typed_tag_goes_where_the_label_goes(app, office_client):
    response = office_client.get("/equipment/find?tag=cam-7")
    assert response.status_code == 302 and response.headers["Location"].endswith("/t/CAM-7")
    unknown = office_client.get("/t/CAM-7")
    assert unknown.status_code == 404 and "Add an asset with this tag" in unknown.get_data(as_text=True)


# Labels -------------------------------------------------------------------------------------------------


def test_label_sheet_has_21_labels_with_qr_codes_of_the_configured_base_url(app, office_client, office):
    made = [make_asset(office, tag=f"LBL-{n:02d}", name=f"Camera {n}") for n in range(23)]
    query = "&".join(f"asset={a.id}" for a in made)
    # The signed-in cookie, sent to a forged Host: the links must still come from BASE_URL.
    office_client.set_cookie("lanyard_session", office_client.get_cookie("lanyard_session").value, domain="evil.example")
    response = office_client.get(f"/equipment/labels?{query}", headers={"Host": "evil.example"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count('class="label-sheet"') == 2
    assert page.count('class="qr-label"') == 23
    assert page.count('<svg class="qr"') == 23
    expected = qr_svg("https://lanyard.test/t/LBL-00")
    assert f'd="{expected.path}"' in page and "evil.example" not in page
    with app.test_request_context("/", headers={"Host": "evil.example"}):
        assert label_url("LBL-00") == "https://lanyard.test/t/LBL-00"
    assert "style=" not in page and "<script>" not in page
    skipped = office_client.get(f"/equipment/labels?asset={made[0].id}&skip=20").get_data(as_text=True)
    assert skipped.count('class="qr-label qr-label-blank"') == 20 and skipped.count('class="qr-label"') == 1


# CSV ----------------------------------------------------------------------------------------------------


def test_exports_guard_against_formula_injection(app, office_client, office, teacher):
    asset = make_asset(
        office, tag="CSV-1", name='=HYPERLINK("http://x.example","click")', notes="@SUM(A1)", home_location="+Hall"
    )
    lend(office, asset, teacher, purpose="-2+3", condition="=cmd|' /C calc'!A0")
    rows = _csv_rows(office_client.get("/equipment/export/assets.csv"))
    assert rows[0][:3] == ["tag", "name", "kind"]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["name"] == '\'=HYPERLINK("http://x.example","click")'
    assert row["notes"] == "'@SUM(A1)" and row["home_location"] == "'+Hall"
    response = office_client.get("/equipment/export/loans.csv")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    loans_rows = _csv_rows(response)
    loan = dict(zip(loans_rows[0], loans_rows[1], strict=True))
    assert loan["purpose"] == "'-2+3" and loan["condition_out"] == "'=cmd|' /C calc'!A0" and loan["borrower"] == "Mr Teacher"


def test_import_page_reports_each_bad_row_and_imports_nothing(app, office_client):
    token = page_csrf_token(office_client)
    text = "tag,name,kind\nIMP-1,Camera,camera\nIMP-2,,camera\nIMP-3,Thing,toaster\n"
    response = office_client.post(
        "/equipment/import",
        data={"csrf_token": token, "file": (io.BytesIO(text.encode()), "assets.csv")},
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nothing was imported: 2 rows need correcting." in page
    assert "Row 3 (IMP-2): name: Enter a name" in page and "Row 4 (IMP-3): kind: Choose" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SchoolAsset)) == 0
    good = office_client.post(
        "/equipment/import",
        data={"csrf_token": token, "file": (io.BytesIO(b"\xef\xbb\xbftag,name,kind\nIMP-1,Camera,camera\n"), "assets.csv")},
        content_type="multipart/form-data",
    )
    assert good.status_code == 302
    assert db.session.scalar(sa.select(SchoolAsset.tag)) == "IMP-1"


# API ----------------------------------------------------------------------------------------------------


def test_api_assets_check_out_in_and_problem_details(app, office_client, office, teacher):
    headers = api_headers(office_client)
    created = office_client.post("/api/v1/assets", headers=headers, json={"tag": "api-1", "name": "Laptop", "kind": "laptop"})
    assert created.status_code == 201 and created.get_json()["tag"] == "API-1"
    asset_id = created.get_json()["id"]
    invalid = office_client.post("/api/v1/assets", headers=headers, json={"tag": "", "name": "", "kind": "boat", "colour": "red"})
    assert invalid.status_code == 422 and invalid.get_json()["errors"] == {"colour": ["Unknown field."]}
    due = (local_today() + timedelta(days=3)).isoformat()
    out = office_client.post(
        f"/api/v1/assets/{asset_id}/check-out", headers=headers, json={"borrower_id": teacher.id, "due_on": due}
    )
    assert out.status_code == 201 and out.get_json()["borrower"]["name"] == "Mr Teacher"
    twice = office_client.post(
        f"/api/v1/assets/{asset_id}/check-out", headers=headers, json={"borrower_id": office.id, "due_on": due}
    )
    assert twice.status_code == 409 and twice.mimetype == "application/problem+json"
    assert "already on loan to Mr Teacher" in twice.get_json()["detail"]
    assert office_client.get(f"/api/v1/assets/{asset_id}").get_json()["open_loan"]["id"] == out.get_json()["id"]
    back = office_client.post(f"/api/v1/assets/{asset_id}/check-in", headers=headers, json={"condition": "Fine"})
    assert back.status_code == 200 and back.get_json()["condition_in"] == "Fine"
    patched = office_client.patch(f"/api/v1/assets/{asset_id}", headers=headers, json={"home_location": "Office"})
    assert patched.get_json()["home_location"] == "Office"
    found = office_client.get("/api/v1/assets?q=laptop").get_json()["items"]
    assert [a["tag"] for a in found] == ["API-1"]
    bad_date = office_client.post(
        f"/api/v1/assets/{asset_id}/check-out", headers=headers, json={"borrower_id": teacher.id, "due_on": "27/11"}
    )
    assert bad_date.status_code == 422 and "due_on" in bad_date.get_json()["errors"]


def test_api_stocktake_scans_are_idempotent_and_close_reports(app, office_client, office, teacher):
    make_asset(office, tag="ST-1", home_location="Hall")
    make_asset(office, tag="ST-2", home_location="Hall")
    headers = api_headers(office_client)
    take = office_client.post("/api/v1/stocktakes", headers=headers, json={"location": "Hall"})
    assert take.status_code == 201
    take_id = take.get_json()["id"]
    first = office_client.post(
        f"/api/v1/stocktakes/{take_id}/scans", headers=headers, json={"tag": "https://lanyard.test/t/ST-1"}
    )
    assert first.status_code == 201 and first.get_json()["created"] is True and first.get_json()["scanned_count"] == 1
    second = office_client.post(f"/api/v1/stocktakes/{take_id}/scans", headers=headers, json={"tag": "st-1"})
    assert second.status_code == 200 and second.get_json()["created"] is False
    assert second.get_json()["scan"]["id"] == first.get_json()["scan"]["id"]
    nonsense = office_client.post(f"/api/v1/stocktakes/{take_id}/scans", headers=headers, json={"tag": "<script>"})
    assert nonsense.status_code == 422 and "<script>" not in nonsense.get_data(as_text=True)
    closed = office_client.post(f"/api/v1/stocktakes/{take_id}/close", headers=headers)
    assert closed.get_json()["counts"] == {"present": 1, "missing": 1, "on_loan": 0, "unexpected": 0}
    report = office_client.get(f"/api/v1/stocktakes/{take_id}").get_json()["report"]
    assert [r["tag"] for r in report["missing"]] == ["ST-2"]
    assert office_client.post(f"/api/v1/stocktakes/{take_id}/close", headers=headers).status_code == 409
    page = office_client.get(f"/equipment/stocktakes/{take_id}").get_data(as_text=True)
    assert "Missing (1)" in page and "Present (1)" in page
    rows = _csv_rows(office_client.get(f"/equipment/stocktakes/{take_id}/report.csv"))
    assert [r[:3] for r in rows[1:]] == [["ST-2", rows[1][1], "missing"], ["ST-1", rows[2][1], "present"]]


def test_every_equipment_api_route_is_in_the_openapi_description(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or not any(part in rule.rule for part in ("/assets", "/loans", "/stocktakes")):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in document["paths"][path], f"{method} {path} is not described"


# Pages at large -----------------------------------------------------------------------------------------


def test_office_pages_render_and_escape_what_people_typed(app, office_client, office, teacher):
    asset = make_asset(office, tag="XSS-1", name="<script>alert(1)</script>", home_location="<img src=x onerror=alert(1)>")
    lend(office, asset, teacher)
    with write_intent():
        stocktakes.start_stocktake(db.session, office, "")
        db.session.commit()
    for path in (
        "/equipment",
        "/equipment/loans",
        f"/equipment/{asset.id}",
        "/equipment/labels",
        "/equipment/stocktakes",
        "/equipment/scan",
    ):
        response = office_client.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 200, path
        assert "<script>alert(1)" not in page and "<img src=x" not in page, path
        assert "style=" not in page and " onclick=" not in page, path
        assert response.headers["Cache-Control"] == "no-store"


def test_my_data_export_includes_loans(app, client, office, teacher):
    lend(office, make_asset(office, tag="EXP-1"), teacher)
    sign_in(client, teacher)
    data = client.get("/api/v1/me/export").get_json()
    assert [loan["asset"]["tag"] for loan in data["loans"]] == ["EXP-1"]


def test_stocktake_pages_start_scan_without_javascript_and_close(app, office_client, office):
    make_asset(office, tag="PG-1", home_location="Library")
    token = page_csrf_token(office_client)
    started = office_client.post("/equipment/stocktakes", data={"csrf_token": token, "location": "Library"})
    assert started.status_code == 302
    take = stocktakes.open_stocktake(db.session)
    assert take.location == "Library"
    again = office_client.post("/equipment/stocktakes", data={"csrf_token": token, "location": ""})
    assert again.status_code == 409 and "is still open" in again.get_data(as_text=True)
    office_client.post(f"/equipment/stocktakes/{take.id}/scan", data={"csrf_token": token, "tag": "pg-1"})
    page = office_client.get(f"/equipment/stocktakes/{take.id}").get_data(as_text=True)
    assert '<span id="found-count">1</span> of <span id="expected-count">1</span> expected found' in page and "PG-1" in page
    closed = office_client.post(f"/equipment/stocktakes/{take.id}/close", data={"csrf_token": token, "confirmed": "yes"})
    assert closed.status_code == 302
    db.session.expire_all()
    assert db.session.scalar(sa.select(SchoolAsset.last_audited_at)) is not None
    assert loans.open_loans(db.session) == []


def test_the_stocktake_counter_counts_only_expected_items_found(app, office_client, office):
    """Issue 16: "2 of 3 expected found", with a stray asset and an unknown tag counted apart."""
    for tag in ("CT-1", "CT-2", "CT-3"):
        make_asset(office, tag=tag, home_location="Hall")
    make_asset(office, tag="CT-9", home_location="Library")
    token = page_csrf_token(office_client)
    office_client.post("/equipment/stocktakes", data={"csrf_token": token, "location": "Hall"})
    take = stocktakes.open_stocktake(db.session)
    for tag in ("CT-1", "CT-2", "CT-9", "NOPE-1"):
        office_client.post(f"/equipment/stocktakes/{take.id}/scan", data={"csrf_token": token, "tag": tag})
    page = office_client.get(f"/equipment/stocktakes/{take.id}").get_data(as_text=True)
    assert '<span id="found-count">2</span> of <span id="expected-count">3</span> expected found' in page
    assert '<span id="unexpected-count">1</span> not expected here, <span id="unknown-count">1</span> unknown tag.' in page
    answer = office_client.post(
        f"/api/v1/stocktakes/{take.id}/scans", json={"tag": "CT-3"}, headers={"X-CSRFToken": token}
    ).get_json()
    assert (answer["found_count"], answer["expected_count"], answer["unexpected_count"], answer["unknown_count"]) == (3, 3, 1, 1)


def test_check_out_suggests_the_usual_loan_length_from_today(app, office_client, office, frozen_clock):
    """Issue 16: the due date defaults to loans.default_days from today (school date); examples are never past."""
    from app.services.settings import set_setting

    asset = make_asset(office, tag="DUE-1")
    page = office_client.get(f"/equipment/{asset.id}/check-out").get_data(as_text=True)
    week = local_today() + timedelta(days=7)
    assert f'value="{week:%Y-%m-%d}"' in page and f"The usual loan ends on {week:%d/%m/%Y}" in page
    with write_intent():
        set_setting(db.session, office, "loans.default_days", 14)
        db.session.commit()
    fortnight = local_today() + timedelta(days=14)
    assert f'value="{fortnight:%Y-%m-%d}"' in office_client.get(f"/equipment/{asset.id}/check-out").get_data(as_text=True)
    token = page_csrf_token(office_client)
    refused = office_client.post(
        f"/equipment/{asset.id}/check-out", data={"csrf_token": token, "borrower_id": office.id, "due_on": "nonsense"}
    )
    assert refused.status_code == 422 and f"like {fortnight:%d/%m/%Y}" in refused.get_data(as_text=True)


def test_closing_a_stocktake_asks_first_and_a_bare_post_closes_nothing(app, office_client, office):
    """Issue 16 item 7: the button opens a page saying what will happen; only its form closes the stock-take."""
    make_asset(office, tag="CF-1", home_location="Hall")
    token = page_csrf_token(office_client)
    office_client.post("/equipment/stocktakes", data={"csrf_token": token, "location": "Hall"})
    take = stocktakes.open_stocktake(db.session)
    asked = office_client.get(f"/equipment/stocktakes/{take.id}/close")
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "0 of 1 expected items have been found" in page and 'name="confirmed" value="yes"' in page
    bare = office_client.post(f"/equipment/stocktakes/{take.id}/close", data={"csrf_token": token})
    assert bare.status_code == 303 and bare.headers["Location"].endswith(f"/equipment/stocktakes/{take.id}/close")
    db.session.expire_all()
    assert stocktakes.open_stocktake(db.session) is not None
    done = office_client.post(f"/equipment/stocktakes/{take.id}/close", data={"csrf_token": token, "confirmed": "yes"})
    assert done.status_code == 302
    db.session.expire_all()
    assert stocktakes.open_stocktake(db.session) is None


def test_a_tampered_borrower_gets_a_sentence_not_a_wtforms_message(app, office_client, office):
    asset = make_asset(office, tag="CO-9", name="Camera")
    token = page_csrf_token(office_client)
    for tampered in ("99999999999", "abc", "-3"):
        response = office_client.post(
            f"/equipment/{asset.id}/check-out", data={"csrf_token": token, "borrower_id": tampered, "purpose": "Trip"}
        )
        text = response.get_data(as_text=True)
        assert response.status_code == 422, tampered
        assert "Choose who is borrowing it from the list." in text and "coerce" not in text and 'value="Trip"' in text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Loan)) == 0
