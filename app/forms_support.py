"""One way for routes to turn a service's refusal into what the person sees, and to settle the transaction.

A service refuses a change by raising a ``DomainError`` (``ValidationFailed``, ``Conflict``...), naming
form fields in ``field_errors``. A page route wraps the service call::

    with refused(form) as refusal:
        area = areas.create_area(db.session, current_user, name=form.name.data or "", rule=form.rule.data or "")
    if refusal:
        return render_template("permissions/area_form.html", form=form, area=None), 422
    db.session.commit()

- each message goes on the form's field of that name; a name the form lacks (or a refusal that names no
  field) goes to the form-level messages, shown by the error summary: never an ``AttributeError``, never a
  dropped message;
- without a form the message is flashed (as an error, or as the route says, or not at all);
- the transaction is settled here, once: kept when the refusal itself is audited (``keep_changes``),
  rolled back otherwise.

The JSON API answers a refusal with problem details (RFC 9457) through ``refusal_problem``, which the
application's ``DomainError`` handler uses for every API route.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from flask import Response, flash

from app.extensions import db
from app.problems import problem
from app.services.errors import DomainError, ValidationFailed

CSRF_FIELD = "csrf_token"


def settle_refusal(error: DomainError) -> None:
    """End the transaction of a refused change: keep it when the refusal itself is audited, else drop it."""
    if error.keep_changes:
        db.session.commit()
    else:
        db.session.rollback()


def apply_to_form(form: Any, error: DomainError, *, summary: bool = True) -> None:
    """Put ``error``'s messages on ``form``: on the named fields, else among the form-level messages.

    ``summary=False``: a refusal naming no field adds nothing, the route shows ``error.message`` itself.
    """
    form_level = list(getattr(form, "form_errors", []))
    for name, messages in error.field_errors.items():
        if name != CSRF_FIELD and name in form:
            form[name].errors = list(form[name].errors) + list(messages)
        else:
            form_level.extend(message for message in messages if message not in form_level)
    if summary and not error.field_errors and error.message not in form_level:
        form_level.append(error.message)
    form.form_errors = form_level


class Refusal:
    """A context manager catching one kind of refusal around a service call; true when it caught one."""

    def __init__(
        self,
        form: Any = None,
        catch: tuple[type[DomainError], ...] = (ValidationFailed,),
        flash_as: str | None = "error",
        summary: bool = True,
    ) -> None:
        self.form = form
        self.summary = summary
        self.catch = catch
        self.flash_as = flash_as
        self.error: DomainError | None = None

    def __enter__(self) -> Refusal:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        if exc is None or not isinstance(exc, self.catch):
            return False
        assert isinstance(exc, DomainError)
        self.error = exc
        settle_refusal(exc)
        if self.form is not None:
            apply_to_form(self.form, exc, summary=self.summary)
        elif self.flash_as is not None:
            flash(exc.message, self.flash_as)
        return True

    def __bool__(self) -> bool:
        return self.error is not None

    def problem(self) -> Response:
        """The caught refusal as problem details (the transaction is settled already)."""
        assert self.error is not None, "no refusal was caught"
        return problem_for(self.error)

    @property
    def message(self) -> str:
        return self.error.message if self.error is not None else ""

    @property
    def field_errors(self) -> dict[str, list[str]]:
        return self.error.field_errors if self.error is not None else {}


def refused(form: Any = None, *catch: type[DomainError], flash_as: str | None = "error", summary: bool = True) -> Refusal:
    """Catch a refusal (``ValidationFailed`` unless other classes are given) onto ``form``, or flash it.

    ``flash_as=None`` flashes nothing and ``summary=False`` adds no form-level message: the route shows
    ``refusal.message`` itself (a callout, a flash worded its own way).
    """
    return Refusal(form, tuple(catch) or (ValidationFailed,), flash_as, summary)


def refusal_problem(error: DomainError) -> Response:
    """Settle the transaction and answer ``error`` as problem details (RFC 9457), for the JSON API."""
    settle_refusal(error)
    return problem_for(error)


def problem_for(error: DomainError) -> Response:
    """``error`` as problem details (RFC 9457): its status, title, message, slug, field errors and extras."""
    return problem(
        error.status, error.title, error.message, error.slug, error.field_errors or None, **getattr(error, "problem_extra", {})
    )
