"""The app's navigation, assembled from what each feature registers (so features add to it independently).

On a phone the navigation is a bottom tab bar: Home and each role's main tasks, at most ``MAX_TABS`` in
all, with everything else on the "More" page. On a desktop every item is shown in the top bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from app.models import Role

MAX_TABS = 5

# Each role's main tasks, most important first; a person with several roles gets the roles in this order.
MAIN_TASKS: tuple[tuple[Role, tuple[str, ...]], ...] = (
    (Role.APPROVER, ("permissions.inbox",)),
    (Role.OFFICE, ("equipment.index", "equipment.scan", "equipment.loan_list")),
    (Role.ADMIN, ("admin.staff", "permissions.areas", "admin.settings")),
    (Role.STAFF, ("permissions.scan", "devices.mine", "permissions.my_requests")),
)


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    roles: tuple[Role, ...]
    order: int
    tab_label: str = ""

    @property
    def short_label(self) -> str:
        return self.tab_label or self.label


@dataclass(frozen=True)
class Navigation:
    items: list[NavItem]
    tabs: list[NavItem]

    @property
    def has_more(self) -> bool:
        return len(self.tabs) < len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self):
        return iter(self.items)

    def is_tab(self, item: NavItem) -> bool:
        return item in self.tabs


_items: list[NavItem] = []


def register_nav(
    label: str, endpoint: str, roles: tuple[Role, ...] = (Role.STAFF,), order: int = 50, tab_label: str = ""
) -> None:
    if not any(item.endpoint == endpoint for item in _items):
        _items.append(NavItem(label, endpoint, roles, order, tab_label))
        _navigation_for_roles.cache_clear()


def nav_for(user) -> list[NavItem]:
    if not getattr(user, "is_authenticated", False):
        return []
    return sorted((item for item in _items if user.has_role(*item.roles)), key=lambda item: item.order)


def choose_tabs(items: list[NavItem], user) -> list[NavItem]:
    """Home first, then the main tasks of each of the person's roles, then the rest in order, up to
    ``MAX_TABS`` (keeping one place for "More" when anything is left over)."""
    if len(items) <= MAX_TABS:
        return list(items)
    by_endpoint = {item.endpoint: item for item in items}
    wanted = [by_endpoint[e] for e in ("main.home",) if e in by_endpoint]
    for role, endpoints in MAIN_TASKS:
        if user.has_role(role):
            wanted += [by_endpoint[e] for e in endpoints if e in by_endpoint]
    wanted += items
    tabs: list[NavItem] = []
    for item in wanted:
        if len(tabs) == MAX_TABS - 1:
            break
        if item not in tabs and all(tab.short_label != item.short_label for tab in tabs):
            tabs.append(item)
    return tabs


@dataclass(frozen=True)
class _Roles:
    """Just the roles of a person: what the navigation depends on, so it can be worked out once per set."""

    names: frozenset[str]
    is_authenticated: bool = True

    def has_role(self, *roles: Role) -> bool:
        return any(role in self.names for role in roles)


@lru_cache(maxsize=64)
def _navigation_for_roles(roles: _Roles) -> Navigation:
    items = nav_for(roles)
    return Navigation(items, choose_tabs(items, roles) if items else [])


def navigation_for(user) -> Navigation:
    """The navigation for a person: drawn on every page, and the same for everyone with the same roles
    (a handful of combinations), so it is worked out once per set of roles (issue 13)."""
    if not getattr(user, "is_authenticated", False):
        return Navigation([], [])
    return _navigation_for_roles(_Roles(user.role_names))
