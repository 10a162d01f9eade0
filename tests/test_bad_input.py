"""Bad input never gives a 500 (issue 11, item 7): ids out of range in bodies, forms and query strings,
a CSV cell over the csv module's limit, a logo declaring a huge canvas, and test IMEIs."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from stdnum import luhn

from app.clock import local_today
from app.database import write_intent
from app.extensions import db
from app.ids import MAX_ID, form_id, is_id
from app.models import AuditEvent, PersonalDevice, Role, SchoolAsset, SchoolLogo, StandingPermission
from app.services import asset_csv, school_logo, stocktakes
from app.services.errors import ValidationFailed
from app.services.imei import ImeiError, normalise_imei
from tests.equipment_factories import make_asset, page_csrf_token
from tests.factories import make_device, make_user, sign_in
from tests.permission_factories import ask, make_area

IMAGES = Path(__file__).parent / "images"
HUGE = 99999999999999999999
# Each is refused as an id: too big for any integer column, just past PostgreSQL's, none, negative,
# a bool, a float, a number in a string, and nothing at all.
NOT_IDS = [HUGE, MAX_ID + 1, 0, -1, True, 1.5, "12", None]


@pytest.fixture
def school(app, frozen_clock):
    head = make_user(Role.APPROVER, Role.OFFICE, Role.ADMIN, name="Mrs A Adeyemi")
    staff = make_user(name="Mr B Clarke")
    people = {"head": head, "staff": staff, "phone": make_device(staff, model="iPhone 13"), "area": make_area(head, "Year 3")}
    people["asset"] = make_asset(head)
    return people


def _signed_in(client, user):
    sign_in(client, user)
    return {"X-CSRFToken": page_csrf_token(client)}


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# Ids, in one place ------------------------------------------------------------------------------------


def test_ids_are_checked_against_the_smaller_integer_column():
    assert MAX_ID == 2**31 - 1
    assert is_id(1) and is_id(MAX_ID)
    assert not any(is_id(value) for value in NOT_IDS)
    assert form_id("0") == 0 and form_id(" 42 ") == 42 and form_id(MAX_ID) == MAX_ID
    for typed in (str(HUGE), str(MAX_ID + 1), "-1", "1.5", "", "٣", True):
        with pytest.raises(ValueError):
            form_id(typed)


def _body(school, field: str, value) -> tuple[str, dict]:
    today = local_today().isoformat()
    standing = {"person_id": school["staff"].id, "starts_on": today, "ends_on": today, "reason": "Medical"}
    bodies = {
        "area_id": (
            "/permission-requests",
            {"area_id": value, "device": f"personal-{school['phone'].id}", "reason": "urgent_call", "duration": "one_hour"},
        ),
        "person_id": ("/standing-permissions", {**standing, "person_id": value}),
        "personal_device_id": ("/standing-permissions", {**standing, "personal_device_id": value}),
        "area_ids": ("/standing-permissions", {**standing, "area_ids": [value]}),
        "borrower_id": (
            f"/assets/{school['asset'].id}/check-out",
            {"borrower_id": value, "due_on": (local_today() + timedelta(days=3)).isoformat()},
        ),
    }
    return bodies[field]


@pytest.mark.parametrize("field", ["area_id", "person_id", "personal_device_id", "area_ids", "borrower_id"])
def test_every_id_in_a_json_body_is_range_checked_and_named(app, client, school, field):
    headers = _signed_in(client, school["head"])
    for value in NOT_IDS:
        if value is None and field in {"personal_device_id", "borrower_id"}:
            continue  # may be left out: "any of their devices"; the borrower is then asked for by the service
        path, body = _body(school, field, value)
        response = client.post(f"/api/v1{path}", json=body, headers=headers)
        assert response.status_code == 422, (field, value, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
        assert field in response.get_json()["errors"], (field, value)
    # Nothing was written by any of them: no request, no standing permission, no loan.
    assert _count(StandingPermission) == 0
    assert db.session.get(SchoolAsset, school["asset"].id).status == "available"


def test_the_same_bodies_with_real_ids_still_work(app, client, school):
    headers = _signed_in(client, school["staff"])
    path, body = _body(school, "area_id", school["area"].id)
    assert client.post(f"/api/v1{path}", json=body, headers=headers).status_code == 201
    client.post("/sign-out", headers=headers)
    headers = _signed_in(client, school["head"])
    path, body = _body(school, "area_ids", school["area"].id)
    body["personal_device_id"] = school["phone"].id
    assert client.post(f"/api/v1{path}", json=body, headers=headers).status_code == 201
    path, body = _body(school, "borrower_id", school["staff"].id)
    assert client.post(f"/api/v1{path}", json=body, headers=headers).status_code == 201


def test_an_id_written_as_a_whole_number_with_a_fraction_part_is_that_id(app, client, school):
    """JSON has one kind of number: 12.0 is 12 (JSON Schema's "integer" accepts it, and so does the API)."""
    headers = _signed_in(client, school["staff"])
    path, body = _body(school, "area_id", float(school["area"].id))
    answer = client.post(f"/api/v1{path}", json=body, headers=headers)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.get_json()["area"]["id"] == school["area"].id


def test_huge_ids_in_urls_are_not_found_on_every_route_that_takes_one(app, client, school):
    headers = _signed_in(client, school["head"])
    with write_intent():
        take = stocktakes.start_stocktake(db.session, school["head"], "")
        db.session.commit()
    asked = ask(school["staff"], school["area"], school["phone"])
    calls = [
        ("post", f"/permission-requests/{HUGE}/decision", {"decision": "approve"}),
        ("post", f"/permission-requests/{HUGE}/end", None),
        ("post", f"/permission-requests/{HUGE}/withdraw", None),
        ("post", f"/standing-permissions/{HUGE}/end", None),
        ("post", f"/stocktakes/{HUGE}/scans", {"tag": "CAM-1"}),
        ("post", f"/stocktakes/{HUGE}/close", None),
        ("post", f"/assets/{HUGE}/check-in", None),
        ("get", f"/devices/{MAX_ID + 1}", None),
        ("get", f"/loans/{HUGE}", None),
    ]
    for method, path, body in calls:
        response = getattr(client, method)(f"/api/v1{path}", json=body, headers=headers)
        assert response.status_code == 404, (path, response.status_code)
    # The real ones answer; a scan's tag is text, however long its digits.
    scan = client.post(f"/api/v1/stocktakes/{take.id}/scans", json={"tag": str(HUGE)}, headers=headers)
    assert scan.status_code in (200, 201, 422), scan.get_data(as_text=True)
    decided = client.post(f"/api/v1/permission-requests/{asked.id}/decision", json={"decision": "approve"}, headers=headers)
    assert decided.status_code == 200


def test_forms_refuse_ids_out_of_range_with_a_field_error(app, client, school):
    sign_in(client, school["head"])
    token = page_csrf_token(client, "/standing")
    today = local_today().strftime("%Y-%m-%d")
    for field, value in (("person", str(HUGE)), ("device", str(HUGE)), ("areas", str(MAX_ID + 1)), ("person", "-3")):
        data = {
            "csrf_token": token,
            "person": str(school["staff"].id),
            "device": "0",
            "starts_on": today,
            "ends_on": today,
            "reason": "x",
        }
        data[field] = value
        response = client.post("/standing", data=data)
        assert response.status_code == 422, (field, value)
    assert _count(StandingPermission) == 0

    token = page_csrf_token(client, f"/equipment/{school['asset'].id}/check-out")
    due = (local_today() + timedelta(days=2)).strftime("%Y-%m-%d")
    response = client.post(
        f"/equipment/{school['asset'].id}/check-out", data={"csrf_token": token, "borrower_id": str(HUGE), "due_on": due}
    )
    assert response.status_code == 422
    assert db.session.get(SchoolAsset, school["asset"].id).status == "available"

    token = page_csrf_token(client, "/cover")
    response = client.post("/cover", data={"csrf_token": token, "delegates": str(HUGE), "escalation_minutes": "5"})
    assert response.status_code == 422


def test_huge_numbers_in_page_query_strings_are_harmless(app, client, school):
    sign_in(client, school["head"])
    assert client.get(f"/equipment?page={HUGE}").status_code == 200
    assert client.get(f"/equipment/labels?asset={HUGE}&asset={school['asset'].id}").status_code == 200
    assert client.get(f"/audit?device={HUGE}&area={MAX_ID + 1}").status_code == 200
    described = client.get(f"/api/v1/assets?limit={HUGE}&offset={HUGE}")  # checked against the OpenAPI description
    assert described.status_code == 400 and described.mimetype == "application/problem+json"


# CSV cells over the csv module's limit --------------------------------------------------------------

HEADER = "tag,name,kind,notes\n"


def test_a_csv_cell_over_the_limit_refuses_the_file_naming_its_row(app, school):
    huge = "x" * (csv.field_size_limit() + 10)
    text = HEADER + "CAM-1,Camera,camera,\nCAM-2,Camera,camera,\n" + f'CAM-3,Camera,camera,"{huge}"\nCAM-4,Camera,camera,\n'
    with write_intent(), pytest.raises(asset_csv.ImportRefused) as refused:
        asset_csv.import_assets(db.session, school["head"], text)
    db.session.commit()  # as the route does: only the audited refusal is kept
    assert [problem.row for problem in refused.value.problems] == [4]
    assert "longer than the 131,072 characters" in str(refused.value.problems[0])
    assert _count(SchoolAsset) == 1  # the fixture's own asset only
    refusal = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "asset.import_refused")).one()
    assert '"bad_rows": [4]' in refusal.details or '"bad_rows":[4]' in refusal.details


def test_a_huge_header_cell_is_row_one(app, school):
    with write_intent(), pytest.raises(asset_csv.ImportRefused) as refused:
        asset_csv.import_assets(db.session, school["head"], '"' + "t" * 200_000 + '",name,kind\nCAM-1,Camera,camera\n')
    db.session.rollback()
    assert str(refused.value.problems[0]).startswith("Row 1: A cell is longer than")


def test_the_import_page_answers_422_naming_the_row_and_writes_nothing(app, client, school):
    sign_in(client, school["head"])
    token = page_csrf_token(client, "/equipment/import")
    text = HEADER + "CAM-1,Camera,camera,\n" + 'CAM-2,Camera,camera,"' + "y" * 200_000 + '"\n'
    response = client.post(
        "/equipment/import",
        data={"csrf_token": token, "file": (io.BytesIO(text.encode()), "assets.csv")},
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nothing was imported: 1 row needs correcting." in page and "Row 3: A cell is longer than" in page
    assert _count(SchoolAsset) == 1


# Logo pixel dimensions --------------------------------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    """A small, well-formed PNG header declaring any size (its pixel data is never decoded here)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    exif = b"\xff\xe1" + struct.pack(">H", 8) + b"\xff\xc0\x00\x00\x00\x00"  # a decoy SOF inside a segment
    sof = b"\xff\xc2" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + exif + b"\xff" + sof + b"\xff\xda\x00\x02\xff\xd9"


def _webp(chunk: bytes, body: bytes) -> bytes:
    payload = b"WEBP" + chunk + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def test_image_sizes_are_read_from_real_and_crafted_headers():
    assert school_logo.image_size(_png(20000, 20000), "image/png") == (20000, 20000)
    assert school_logo.image_size((IMAGES / "logo-3x2.jpg").read_bytes(), "image/jpeg") == (3, 2)
    assert school_logo.image_size((IMAGES / "logo-3x2.webp").read_bytes(), "image/webp") == (3, 2)
    assert school_logo.image_size(_jpeg(5000, 40), "image/jpeg") == (5000, 40)
    lossy = b"\x30\x01\x00\x9d\x01\x2a" + struct.pack("<HH", 16383, 300) + b"\x00" * 8
    assert school_logo.image_size(_webp(b"VP8 ", lossy), "image/webp") == (16383, 300)
    bits = (4000 - 1) | ((20 - 1) << 14)
    assert school_logo.image_size(_webp(b"VP8L", b"\x2f" + struct.pack("<I", bits) + b"\x00" * 4), "image/webp") == (4000, 20)
    extended = b"\x00\x00\x00\x00" + (16_777_215).to_bytes(3, "little") + (9).to_bytes(3, "little")
    assert school_logo.image_size(_webp(b"VP8X", extended), "image/webp") == (16_777_216, 10)
    assert school_logo.image_size(b"\xff\xd8\xff\xe0\x00", "image/jpeg") is None
    assert school_logo.image_size(b"\x89PNG\r\n\x1a\n", "image/png") is None


@pytest.mark.parametrize(
    "image, size",
    [
        (_png(20000, 20000), "20000 x 20000"),
        (_png(1025, 10), "1025 x 10"),
        (_jpeg(10, 4096), "10 x 4096"),
        (_webp(b"VP8X", b"\x00" * 4 + (19999).to_bytes(3, "little") + (19999).to_bytes(3, "little")), "20000 x 20000"),
    ],
)
def test_a_logo_declaring_too_many_pixels_is_refused_with_its_size(app, school, image, size):
    with pytest.raises(ValidationFailed) as refused, write_intent():
        school_logo.save_logo(db.session, school["head"], image)
    db.session.rollback()
    assert refused.value.field_errors["logo"] == [
        f"The image is {size} pixels: use one of at most 1024 x 1024 pixels (200 x 200 is plenty)."
    ]
    assert _count(SchoolLogo) == 0


def test_the_settings_page_refuses_a_huge_canvas_and_takes_real_images(app, client, school):
    sign_in(client, school["head"])
    token = page_csrf_token(client, "/admin/settings")

    def upload(data: bytes):
        return client.post(
            "/admin/settings/logo",
            data={"csrf_token": token, "logo": (io.BytesIO(data), "logo.png")},
            content_type="multipart/form-data",
        )

    refused = upload(_png(20000, 20000))
    assert refused.status_code == 422 and "20000 x 20000 pixels" in refused.get_data(as_text=True)
    assert _count(SchoolLogo) == 0
    unreadable = upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    assert unreadable.status_code == 422 and "size in pixels cannot be read" in unreadable.get_data(as_text=True)
    for name in ("logo-3x2.jpg", "logo-3x2.webp"):
        assert upload((IMAGES / name).read_bytes()).status_code == 302
    assert _count(SchoolLogo) == 1
    assert upload(_png(1024, 1024)).status_code == 302


# Test IMEIs ---------------------------------------------------------------------------------------------


def _with_check_digit(body: str) -> str:
    return body + luhn.calc_check_digit(body)


TEST_IMEIS = [
    "000000000000000",
    _with_check_digit("00123456789012"),
    "00-440000-123456-" + luhn.calc_check_digit("00440000123456"),
    "0012345678901234",
]


@pytest.mark.parametrize("typed", TEST_IMEIS)
def test_test_imeis_are_refused_with_a_clear_message(typed):
    with pytest.raises(ImeiError) as refused:
        normalise_imei(typed)
    assert "An IMEI starting 00 is a test number" in str(refused.value) and "*#06#" in str(refused.value)


def test_the_register_page_and_api_refuse_a_test_imei(app, client, school):
    headers = _signed_in(client, school["staff"])
    before = _count(PersonalDevice)
    response = client.post(
        "/api/v1/devices",
        json={"kind": "smartphone", "make": "Test", "model": "Phone", "imei1": "000000000000000"},
        headers=headers,
    )
    assert response.status_code == 422
    assert "An IMEI starting 00 is a test number" in response.get_json()["errors"]["imei1"][0]
    token = page_csrf_token(client, "/devices/new")
    page = client.post(
        "/devices/new", data={"csrf_token": token, "kind": "smartphone", "make": "Test", "model": "Phone", "imei1": TEST_IMEIS[1]}
    )
    assert page.status_code == 422 and "An IMEI starting 00 is a test number" in page.get_data(as_text=True)
    assert _count(PersonalDevice) == before


def test_made_up_imeis_never_start_00():
    from app.demo import demo_imei
    from tests.factories import make_imei

    assert all(not make_imei(n).startswith("00") and normalise_imei(make_imei(n)) for n in range(0, 2000, 7))
    assert all(not demo_imei(f"seed-{n}").startswith("00") for n in range(200))
