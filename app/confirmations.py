"""Destructive buttons ask first, without script: the button opens a GET page saying what will happen, and
only that page's form (which carries ``confirmed=yes``) does it. A post without it is sent to that page."""

from __future__ import annotations

from flask import redirect, render_template, request

from app.devices.forms import ConfirmForm


def confirmed() -> bool:
    """True when the post came from the confirmation page."""
    return request.form.get("confirmed") == "yes"


def ask_first():
    """Answer a post that skipped the confirmation page by showing that page (a GET of the same address)."""
    return redirect(request.path, code=303)


def confirmation_page(*, title: str, consequences: str, button: str, cancel_url: str, danger: bool = True):
    """The page a destructive button opens: what will happen, the real button, and a way back."""
    return render_template(
        "confirm.html",
        title=title,
        consequences=consequences,
        button=button,
        cancel_url=cancel_url,
        danger=danger,
        form=ConfirmForm(),
    )
