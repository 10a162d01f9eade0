"""Errors answered as a page or as problem details, by where the request went."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.problems import problem
from app.services.errors import DomainError


def wants_problem_json() -> bool:
    return request.path.startswith("/api/")


def _http_error(error: HTTPException):
    if wants_problem_json():
        response = problem(error.code or 500, error.name, error.description if error.code != 404 else "Not found.")
    else:
        template = f"errors/{error.code}.html" if error.code in (400, 403, 404, 405, 413) else "errors/generic.html"
        response = current_app.make_response((render_template(template, error=error), error.code))
    valid_methods = getattr(error, "valid_methods", None)
    if valid_methods:
        response.headers["Allow"] = ", ".join(sorted(valid_methods))
    return response


def _csrf_error(error: CSRFError):
    if wants_problem_json():
        return problem(403, "CSRF token missing or invalid", "Send the X-CSRFToken header from the page's meta tag.", "csrf-failed")
    return render_template("errors/csrf.html"), 400


def settle_refusal(error: DomainError) -> None:
    """End the transaction of a refused change: keep it when the refusal itself is audited, else drop it."""
    if error.keep_changes:
        db.session.commit()
    else:
        db.session.rollback()


def _domain_error(error: DomainError):
    settle_refusal(error)
    if wants_problem_json():
        return problem(error.status, error.title, error.message, error.slug, error.field_errors or None, **getattr(error, "problem_extra", {}))
    return render_template("errors/generic.html", error=error, message=error.message), error.status


def _server_error(error: Exception):
    db.session.rollback()
    if wants_problem_json():
        return problem(500, "Internal Server Error", "Something went wrong on our side; nothing was changed.")
    return render_template("errors/generic.html", message="Something went wrong on our side; nothing was changed."), 500


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DomainError, _domain_error)
    if not app.testing:
        app.register_error_handler(Exception, _server_error)
