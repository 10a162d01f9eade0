"""Issue 16 item 9: every page photographed at phone and desktop size, light and dark, and a layout check.

Screenshots go to $LANYARD_SCREENSHOTS (or a temporary folder, printed) for someone to look at. The layout
test fails on sideways scrolling at 320 px, text clipped by its box, or a page's heading off-screen at 390x844.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from app.demo import DEMO_DOMAIN
from tests.browser.conftest import sign_in_page
from tests.browser.test_accessibility import PAGES, PASSWORD, _fill, _seed

SIZES = {"phone": (390, 844), "desktop": (1366, 768)}

# Text elements whose own box hides what does not fit (overflow hidden or clip): their text must fit.
CLIPPED = """() => {
  const found = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.textContent.trim() || el.children.length > 3) continue;
    const style = getComputedStyle(el);
    const hides = ['hidden', 'clip'].includes(style.overflowX) || ['hidden', 'clip'].includes(style.overflowY);
    if (!hides || style.display === 'none' || style.visibility === 'hidden') continue;
    if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1) {
      if (el.closest('[hidden], .visually-hidden, .sr-only')) continue;
      if ((el.offsetWidth <= 1 && el.offsetHeight <= 1) || style.clip.startsWith('rect(0')) continue;  // a label kept for screen readers only (the tab bar's full names)
      found.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ': ' + el.textContent.trim().slice(0, 40));
    }
  }
  return found;
}"""


def _name(who: str | None, path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", f"{who or 'visitor'}{path}").strip("-") or "page"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", sorted(SIZES))
def test_screenshots_of_every_page(live_server, chromium, tmp_path, scheme, size):
    folder = Path(os.environ.get("LANYARD_SCREENSHOTS") or tmp_path / "screens") / f"{size}-{scheme}"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    ids = _seed(live_server)
    width, height = SIZES[size]
    taken = 0
    for who, paths in PAGES.items():
        context = chromium.new_context(
            viewport={"width": width, "height": height}, color_scheme=scheme, base_url=live_server.url, locale="en-GB"
        )
        page = context.new_page()
        if who:
            sign_in_page(page, f"{who}@{DEMO_DOMAIN}", PASSWORD)
        for path in paths:
            page.goto(_fill(path, ids))
            page.screenshot(path=str(folder / f"{_name(who, path)}.png"), full_page=True)
            taken += 1
        context.close()
    assert taken == sum(len(paths) for paths in PAGES.values())


def test_every_page_fits_the_screen(live_server, chromium):
    ids = _seed(live_server)
    problems: list[str] = []
    for who, paths in PAGES.items():
        for width, height in ((320, 700), (390, 844)):
            context = chromium.new_context(viewport={"width": width, "height": height}, base_url=live_server.url, locale="en-GB")
            page = context.new_page()
            if who:
                sign_in_page(page, f"{who}@{DEMO_DOMAIN}", PASSWORD)
            for path in paths:
                page.goto(_fill(path, ids))
                where = f"{path} as {who or 'visitor'} at {width} px"
                if width == 320:
                    wide = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
                    if wide[0] > wide[1]:
                        problems.append(f"{where}: scrolls sideways ({wide[0]} > {wide[1]})")
                    problems += [f"{where}: text clipped in {c}" for c in page.evaluate(CLIPPED)]
                else:
                    heading = page.locator("h1").first
                    if heading.count():
                        box = heading.bounding_box()
                        if box is None or box["y"] < 0 or box["y"] + min(box["height"], 40) > height or box["x"] + 10 > width:
                            problems.append(f"{where}: the page's heading is off-screen ({box})")
            context.close()
    assert problems == [], "\n".join(problems)
