"""What every ``flask`` command shares: running in the application it was loaded for."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
from flask import current_app
from flask.cli import ScriptInfo


def in_own_app(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``command`` inside the application ``flask`` (or a test's CLI runner) loaded, pushing its context
    when no context, or another application's, is current."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        app = click.get_current_context().ensure_object(ScriptInfo).load_app()
        if current_app and current_app._get_current_object() is app:  # type: ignore[attr-defined]
            return command(*args, **kwargs)
        with app.app_context():
            return command(*args, **kwargs)

    return run
