"""Static file versions: one hash of the static folder names every cached file and the service worker."""

from __future__ import annotations

import hashlib
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


def asset_url(filename: str) -> str:
    return url_for("static", filename=filename, v=asset_version())
