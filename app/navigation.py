"""The app's navigation, assembled from what each feature registers (so features add to it independently)."""

from __future__ import annotations

from dataclasses import dataclass

from app.models import Role


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    roles: tuple[Role, ...]
    order: int


_items: list[NavItem] = []


def register_nav(label: str, endpoint: str, roles: tuple[Role, ...] = (Role.STAFF,), order: int = 50) -> None:
    if not any(item.endpoint == endpoint for item in _items):
        _items.append(NavItem(label, endpoint, roles, order))


def nav_for(user) -> list[NavItem]:
    if not getattr(user, "is_authenticated", False):
        return []
    return sorted((item for item in _items if user.has_role(*item.roles)), key=lambda item: item.order)
