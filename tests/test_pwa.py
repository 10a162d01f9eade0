"""The PWA shell: manifest, real icons, the service worker script and the offline page."""

from __future__ import annotations

import struct
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_manifest_is_installable(client):
    response = client.get("/manifest.webmanifest")
    assert response.mimetype == "application/manifest+json"
    manifest = response.get_json()
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/" and manifest["theme_color"]
    purposes = {(icon["sizes"], icon["purpose"]) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= purposes
    for icon in manifest["icons"]:
        with client.get(icon["src"]) as served:
            assert served.status_code == 200
        width, height = _png_size(STATIC / icon["src"].split("?")[0].removeprefix("/static/"))
        assert f"{width}x{height}" == icon["sizes"]


def test_the_service_worker_is_served_from_the_root_with_its_version_and_shell(client):
    response = client.get("/sw.js")
    assert response.mimetype == "text/javascript"
    source = response.get_data(as_text=True)
    assert "__VERSION__" not in source and "__SHELL__" not in source
    assert '"/offline"' in source
    assert "/devices" not in source.split("const SHELL")[1].split(";")[0]


def test_the_offline_page_may_be_cached_but_personal_pages_may_not(client):
    assert "no-store" not in client.get("/offline").headers["Cache-Control"]
    assert client.get("/devices").status_code == 302


def test_every_page_links_the_manifest_and_the_one_script(client):
    page = client.get("/privacy").get_data(as_text=True)
    assert 'rel="manifest"' in page
    assert page.count("<script") == 1
    assert 'name="viewport"' in page
