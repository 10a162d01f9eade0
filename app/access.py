"""Role checks for routes. Ownership is checked by the services (``owned_device`` and friends)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from app.models import Role


def roles_required(*roles: Role) -> Callable:
    """Allow a signed-in person holding any of ``roles``; others get 403, anonymous are sent to sign in."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_roles = roles  # type: ignore[attr-defined]
        return wrapped

    return decorator


def public(view: Callable) -> Callable:
    """Mark a view as deliberately open to anonymous visitors (checked by the access test)."""
    view.is_public = True  # type: ignore[attr-defined]
    return view
