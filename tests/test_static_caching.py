"""Static files: a content hash per file, cached for a year, and all precached by the service worker (issue 13)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"""asset_url\(\s*['"]([^'"]+)['"]\s*\)""")


def template_static_files() -> set[str]:
    """Every static file a template names, found by walking the templates folder."""
    found: set[str] = set()
    for template in (ROOT / "templates").rglob("*.html"):
        found.update(REFERENCE.findall(template.read_text(encoding="utf-8")))
    return found


def precache_list(client) -> list[str]:
    source = client.get("/sw.js").get_data(as_text=True)
    return json.loads(re.search(r"const SHELL = (\[.*?\]);", source).group(1))


def test_the_service_worker_precaches_every_static_file_the_templates_use(client):
    precached = {url.split("?")[0].removeprefix("/static/"): url for url in precache_list(client)}
    used = template_static_files()
    assert {"css/permissions.css", "js/approvals-inbox.js", "css/app.css", "js/app.js"} <= used
    assert used <= set(precached), sorted(used - set(precached))


def test_each_file_url_carries_its_own_content_hash(client):
    for url in precache_list(client)[1:]:
        path, version = url.split("?v=")
        data = (ROOT / "static" / path.removeprefix("/static/")).read_bytes()
        assert version == hashlib.sha256(data).hexdigest()[:12], url


def test_a_hashed_static_file_is_immutable_and_a_stale_hash_is_revalidated(client):
    url = next(u for u in precache_list(client) if "permissions.css" in u)
    with client.get(url) as current:
        assert current.status_code == 200
        assert current.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    with client.get(url.split("?")[0] + "?v=000000000000") as stale:
        assert stale.headers["Cache-Control"] == "no-cache"
    with client.get(url.split("?")[0]) as bare:
        assert bare.headers["Cache-Control"] == "no-cache"
