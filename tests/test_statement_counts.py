"""Statement counts per request do not grow with the data: approvers notified, requests waiting (issue 13).

Counted with an SQLAlchemy ``before_cursor_execute`` listener around one real request each.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import event

from app.extensions import db
from app.models import Role
from tests.factories import make_device, make_user, sign_in
from tests.permission_factories import Browser, ask, make_area
from tests.test_permissions_api import Api


@contextlib.contextmanager
def counted(app) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def asked_by_someone_new(app, area, name: str) -> list[str]:
    """The statements of one request POST by a new member of staff (after their first page)."""
    staff = make_user(name=name)
    phone = make_device(staff, model="iPhone 13")
    api = Api(app, staff)
    api.get("/devices")
    with counted(app) as statements:
        answer = api.post(
            "/permission-requests",
            {"area_id": area.id, "device": f"personal-{phone.id}", "reason": "urgent_call", "duration": "one_hour"},
        )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return statements


def test_the_request_post_costs_the_same_whatever_the_number_of_approvers(app, frozen_clock):
    admin = make_user(Role.ADMIN, name="Mr T Hughes")
    make_user(Role.APPROVER, name="Approver 00")
    area = make_area(admin, "Year 3 classroom")
    with_one = asked_by_someone_new(app, area, "Mr B Clarke")
    for n in range(1, 10):
        make_user(Role.APPROVER, name=f"Approver {n:02d}")
    with_ten = asked_by_someone_new(app, area, "Miss C Davies")
    assert len(with_ten) == len(with_one), "\n".join(with_ten)
    assert len(with_one) <= 20, "\n".join(with_one)


def test_the_inbox_costs_the_same_at_5_and_50_waiting(app, frozen_clock):
    admin = make_user(Role.ADMIN, name="Mr T Hughes")
    head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
    area = make_area(admin, "Year 3 classroom")
    browser = Browser(app)
    sign_in(browser, head)
    browser.get("/approvals")

    def waiting(count: int) -> None:
        while len(people) < count:
            person = make_user(name=f"Staff {len(people):03d}")
            ask(person, area, make_device(person, model="iPhone 13"))
            people.append(person)

    def inbox() -> tuple[list[str], str]:
        with counted(app) as statements:
            page = browser.get("/approvals")
        assert page.status_code == 200
        return statements, page.get_data(as_text=True)

    people: list = []
    waiting(5)
    at_five, five_page = inbox()
    waiting(50)
    at_fifty, fifty_page = inbox()
    assert len(at_fifty) == len(at_five), "\n".join(at_fifty)
    assert "Staff 004" in five_page
    assert "Staff 000" in fifty_page and "Staff 049" not in fifty_page  # paged, oldest first
    assert "50 waiting" in fifty_page and "Next page" in fifty_page
    last = browser.get("/approvals?page=3").get_data(as_text=True)
    assert "Staff 049" in last and "Previous page" in last and "Next page" not in last
