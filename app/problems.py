"""RFC 9457 problem details, built in one place."""

from __future__ import annotations

from flask import jsonify


def problem(status: int, title: str, detail: str = "", slug: str = "about:blank", errors: dict | None = None, **extra):
    body = {
        "type": slug if slug == "about:blank" else f"urn:lanyard:problem:{slug}",
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response
