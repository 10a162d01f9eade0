"""roles_required and public on a view made inside the test (mutation testing, issue 19).

The app's own views are decorated when their modules are imported, before any test runs, so only a
view decorated here shows what a changed decorator would do to the next route someone writes.
"""

from flask import Flask

from app.access import public, roles_required
from app.models import Role
from tests.factories import make_user, sign_in


def _probe(app: Flask, *roles: Role) -> None:
    def probe(thing_id):
        return f"thing {thing_id}"

    app.add_url_rule("/_probe/<int:thing_id>", "probe", roles_required(*roles)(probe))


def test_roles_required_lets_in_any_of_its_roles_with_the_views_arguments(app, client):
    _probe(app, Role.OFFICE, Role.ADMIN)
    sign_in(client, make_user(Role.ADMIN))
    response = client.get("/_probe/7")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "thing 7"


def test_roles_required_refuses_a_signed_in_person_without_the_role(app, client):
    _probe(app, Role.OFFICE)
    sign_in(client, make_user(Role.APPROVER))
    assert client.get("/_probe/7").status_code == 403


def test_roles_required_sends_anonymous_visitors_to_sign_in(app, client):
    _probe(app, Role.OFFICE)
    response = client.get("/_probe/7")
    assert response.status_code == 302
    assert "/sign-in" in response.headers["Location"]


def test_roles_required_records_its_roles_and_keeps_the_views_name():
    def probe():
        return "ok"

    wrapped = roles_required(Role.OFFICE, Role.ADMIN)(probe)
    assert wrapped.required_roles == (Role.OFFICE, Role.ADMIN)
    assert wrapped.__name__ == "probe"


def test_public_marks_the_view_and_returns_it():
    def probe():
        return "ok"

    assert public(probe) is probe
    assert probe.is_public is True
