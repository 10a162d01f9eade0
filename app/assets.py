"""Static file versions: each file's URL carries its own content hash (``?v=``), so it may be cached for a
year and is fetched again only when that file changes; one hash of the whole folder versions the
service worker, which precaches every static file a page uses (issue 13).
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path

from flask import current_app, url_for

# Files the service worker keeps for offline use (the app shell). Pages with personal data are never cached.
SHELL_FILES = (
    "css/app.css",
    "js/app.js",
    "icons/icon-192.png",
    "icons/icon.svg",
    "manifest.webmanifest",
)


@cache
def _version(static_folder: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(static_folder).rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(static_folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def asset_version() -> str:
    return _version(current_app.static_folder)


@cache
def _file_version(static_folder: str, filename: str) -> str:
    path = Path(static_folder) / filename
    if not path.is_file():
        return _version(static_folder)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def file_version(filename: str) -> str:
    return _file_version(current_app.static_folder, filename)


def asset_url(filename: str) -> str:
    return url_for("static", filename=filename, v=file_version(filename))


TEMPLATE_REFERENCE = re.compile(r"""asset_url\(\s*['"]([^'"]+)['"]\s*\)""")


@cache
def _template_files(template_folder: str) -> tuple[str, ...]:
    found: set[str] = set()
    for path in Path(template_folder).rglob("*.html"):
        found.update(TEMPLATE_REFERENCE.findall(path.read_text(encoding="utf-8")))
    return tuple(sorted(found))


def precached_files() -> list[str]:
    """The app shell and every static file a template names: the service worker keeps them all."""
    from app import ROOT

    names = dict.fromkeys(name for name in SHELL_FILES if name != "manifest.webmanifest")
    names.update(dict.fromkeys(_template_files(str(ROOT / "templates"))))
    return list(names)


IMMUTABLE = "public, max-age=31536000, immutable"


def cache_static(response):
    """after_request: a static file asked for by its current hash is immutable for a year."""
    from flask import request

    if request.endpoint == "static" and response.status_code == 200:
        filename = (request.view_args or {}).get("filename", "")
        if request.args.get("v") == file_version(filename):
            response.headers["Cache-Control"] = IMMUTABLE
        else:
            response.headers["Cache-Control"] = "no-cache"
    return response
