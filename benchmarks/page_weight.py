"""Page weight (DESIGN.md section 9): the request page and the approvals inbox on first load and repeat.

Headless Chromium loads each page from gunicorn; every response body is gzip-compressed here to count
the bytes a compressing proxy (README: Caddy `encode gzip`) would send. The repeat load counts what
still goes to the network once the service worker holds the shell.

Usage: python -m benchmarks.page_weight
"""

from __future__ import annotations

import gzip
import subprocess
import sys

from benchmarks.common import ROOT, Figure, environment, flask, gunicorn, print_table, scratch_database

CREDENTIALS_SCRIPT = """
from pathlib import Path
import sqlalchemy as sa
from app import create_app
from app.demo import demo_password
from app.extensions import db
from app.models import Area
app = create_app()
with app.app_context():
    area = db.session.scalar(sa.select(Area).where(Area.name == "Year 3 classroom"))
    print(demo_password(Path(app.instance_path)), area.poster_token)
"""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _load(page, path: str) -> tuple[int, int, int, list[str]]:
    """Load a page; return (gzip bytes, raw bytes, requests, third-party hosts)."""
    seen: list = []

    def record(response) -> None:
        seen.append(response)

    page.on("response", record)
    page.goto(path, wait_until="networkidle")
    page.remove_listener("response", record)
    compressed = raw = 0
    third_party = []
    for response in seen:
        if not response.url.startswith(page.url.split("/", 3)[0] + "//" + page.url.split("/", 3)[2]):
            third_party.append(response.url)
            continue
        try:
            body = response.body()
        except Exception:  # noqa: BLE001  (a redirect has no body)
            body = b""
        raw += len(body)
        compressed += len(gzip.compress(body, 6)) if body else 0
    network = sum(1 for r in seen if not r.from_service_worker)
    return compressed, raw, network, third_party


def measure() -> list[Figure]:
    from playwright.sync_api import sync_playwright

    figures: list[Figure] = []
    with scratch_database() as (url, instance):
        env = environment(url, instance)
        flask(env, "db", "upgrade")
        flask(env, "demo")
        password, poster = subprocess.run(
            [sys.executable, "-c", CREDENTIALS_SCRIPT], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout.split()
        with gunicorn(env) as base_url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for who, path, label in (("bclarke", f"/a/{poster}", "request page"), ("head", "/approvals", "approvals inbox")):
                context = browser.new_context(base_url=base_url, viewport={"width": 360, "height": 740})
                page = context.new_page()
                page.goto("/sign-in")
                page.get_by_label("Email").fill(f"{who}@demo.lanyard.school")
                page.get_by_label("Password").fill(password)
                page.get_by_role("button", name="Sign in", exact=True).click()
                page.wait_for_load_state("networkidle")
                # First load of this page with an empty cache: a fresh context, signed-in cookie copied over.
                cookies = context.cookies()
                first = browser.new_context(base_url=base_url, viewport={"width": 360, "height": 740})
                first.add_cookies(cookies)
                first_page = first.new_page()
                compressed, raw, requests, third_party = _load(first_page, path)
                first_page.wait_for_function(
                    "navigator.serviceWorker.controller !== null || document.documentElement.dataset.swRegistered === 'true'"
                )
                first_page.reload(wait_until="networkidle")
                to_server: list[str] = []

                def forwarded(request, to_server=to_server) -> None:
                    if request.service_worker is not None:
                        to_server.append(request.url)

                first.on("request", forwarded)
                _c, _r, _n, _t = _load(first_page, path)
                first.remove_listener("request", forwarded)
                repeat_requests = len(to_server)
                figures += [
                    Figure(f"{label} first load, gzip", compressed / 1024, "KB", 30, note=f"{raw / 1024:.1f} KB uncompressed"),
                    Figure(f"{label} first load requests", requests, "count"),
                    Figure(f"{label} third-party requests", len(third_party), "count", 0),
                    Figure(
                        f"{label} repeat load, requests reaching the server",
                        repeat_requests,
                        "count",
                        note="the page only; CSS, JS and icons come from the service worker",
                    ),
                ]
                first.close()
                context.close()
            browser.close()
    return figures


def main() -> None:
    print_table(measure())


if __name__ == "__main__":
    main()
