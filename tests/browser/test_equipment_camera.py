"""The in-app scanner reads a real QR label through the camera: Chromium's fake camera plays a video of
the label (DESIGN.md section 11), jsQR decodes it, and the stock-take records it through the API."""

from __future__ import annotations

import qrcode
from playwright.sync_api import expect

from app.database import write_intent
from app.extensions import db
from app.models import Role
from app.services import stocktakes
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, sign_in_page
from tests.equipment_factories import make_asset
from tests.factories import PASSWORD, make_user

WIDTH, HEIGHT, MODULE = 640, 480, 8


def _label_video(text: str, path) -> None:
    """A few seconds of a still QR code as YUV4MPEG2 (the format Chromium's fake camera plays)."""
    code = qrcode.QRCode(border=4)
    code.add_data(text)
    code.make(fit=True)
    matrix = code.get_matrix()
    size = len(matrix) * MODULE
    left, top = (WIDTH - size) // 2, (HEIGHT - size) // 2
    luma = bytearray([235]) * (WIDTH * HEIGHT)
    for row, cells in enumerate(matrix):
        for col, dark in enumerate(cells):
            if dark:
                for y in range(top + row * MODULE, top + (row + 1) * MODULE):
                    start = y * WIDTH + left + col * MODULE
                    luma[start : start + MODULE] = bytes([16]) * MODULE  # black
    chroma = bytes([128]) * (WIDTH * HEIGHT // 2)
    with open(path, "wb") as video:
        video.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(30):
            video.write(b"FRAME\n" + bytes(luma) + chroma)


def test_the_camera_scanner_records_a_label(live_server, chromium, tmp_path):
    with live_server.app_context():
        office = make_user(Role.OFFICE, name="Ms O Brennan")
        email = office.email
        make_asset(office, tag="CAM-900", name="Camera on the shelf", home_location="Hall")
        with write_intent():
            take = stocktakes.start_stocktake(db.session, office, "Hall")
            db.session.commit()
            take_id = take.id
    video = tmp_path / "label.y4m"
    _label_video(f"{live_server.url}/t/CAM-900", video)

    # A second browser from the same Playwright, started with the fake camera playing the label.
    browser = chromium.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    context = browser.new_context(
        viewport=PHONE, base_url=live_server.url, permissions=["camera"], is_mobile=True, has_touch=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    sign_in_page(page, email, PASSWORD)
    page.goto(f"/equipment/stocktakes/{take_id}")
    page.get_by_role("button", name="Use the camera").click()
    scanned = page.get_by_role("list", name="Scanned labels")
    expect(scanned.get_by_role("listitem")).to_have_count(1)
    expect(scanned).to_contain_text("CAM-900")
    expect(page.locator("#found-count")).to_have_text("1")
    page.wait_for_timeout(3000)  # the same label stays in view: it must not be recorded again
    expect(scanned.get_by_role("listitem")).to_have_count(1)
    page.get_by_role("button", name="Stop the camera").click()
    expect(page.get_by_role("button", name="Use the camera")).to_be_visible()
    context.close()
    browser.close()
    with live_server.app_context():
        assert [scan.tag for scan in stocktakes.scans_of(db.session, take_id)] == ["CAM-900"]
