"""Ids in URLs beyond the converter's range answer 404 on every method, for every id route (issue 19, item 5).

A path whose id cannot be one of ours matches no route at all: not a 405 for the methods its route lacks,
not a 500 from the database. Checked for every rule in the URL map that takes an id, pages and API alike.
"""

from __future__ import annotations

import re

import pytest

from app.database import write_intent
from app.extensions import db
from app.ids import MAX_ID, URL_ID_PATTERN
from app.models import Role
from app.services import api_tokens
from tests.equipment_factories import page_csrf_token
from tests.factories import make_device, make_user, sign_in

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
OUT_OF_RANGE = (MAX_ID + 1, 2**31 + 10, 10**10, 99999999999999999999, 0)


def _id_rules(app) -> list:
    rules = [rule for rule in app.url_map.iter_rules() if "<int:" in rule.rule]
    assert len(rules) > 40, "the URL map should hold the id routes of pages and API"
    return rules


def _with_id(rule, value: int) -> str:
    return re.sub(r"<int:[a-z_]+>", str(value), rule.rule)


def test_the_url_pattern_is_exactly_the_id_range():
    pattern = re.compile(URL_ID_PATTERN + r"\Z")
    inside = [1, 9, 10, 99, 1_000_000_000, 1_999_999_999, 2_099_999_999, 2_147_483_639, MAX_ID - 1, MAX_ID]
    outside = [0, MAX_ID + 1, 2_147_483_650, 2_147_483_700, 2_200_000_000, 3_000_000_000, 9_999_999_999, 10**10, 10**20]
    assert all(pattern.match(str(n)) for n in inside)
    assert not any(pattern.match(str(n)) for n in outside)
    assert pattern.match("007") and not pattern.match("000") and not pattern.match("-1") and not pattern.match("1.5")


def test_the_converter_refuses_what_its_pattern_refuses(app):
    adapter = app.url_map.bind("lanyard.test")
    assert adapter.match(f"/devices/{MAX_ID}")[1] == {"device_id": MAX_ID}
    for rule in _id_rules(app):
        for value in OUT_OF_RANGE:
            for method in METHODS:
                with pytest.raises(Exception) as refused:
                    adapter.match(_with_id(rule, value), method)
                assert type(refused.value).__name__ == "NotFound", (method, rule.rule, value, refused.value)


def test_every_id_route_answers_404_on_every_method_when_the_id_is_out_of_range(app, client):
    person = make_user(Role.APPROVER, Role.OFFICE, Role.ADMIN, Role.GOVERNOR, name="Range Tester")
    make_device(person)
    with write_intent():
        _token, secret = api_tokens.create_token(db.session, person, "ids")
        db.session.commit()
    sign_in(client, person)
    page_headers = {"X-CSRFToken": page_csrf_token(client)}
    api_headers = {"Authorization": f"Bearer {secret}"}
    for rule in _id_rules(app):
        headers = api_headers if rule.rule.startswith("/api/") else page_headers
        for value in (MAX_ID + 1, 10**12):
            for method in METHODS:
                response = client.open(_with_id(rule, value), method=method, headers=headers, json={})
                assert response.status_code == 404, (method, rule.rule, value, response.status_code)
                if rule.rule.startswith("/api/"):
                    assert response.mimetype == "application/problem+json", (method, rule.rule)
    # In range, the same routes still answer as routes: a real device, and a missing one as not found.
    device = make_device(person)
    assert client.get(f"/api/v1/devices/{device.id}", headers=api_headers).status_code == 200
    assert client.patch(f"/api/v1/devices/{MAX_ID}", json={}, headers=api_headers).status_code == 404
    assert client.delete(f"/api/v1/devices/{device.id}", headers=api_headers).status_code == 405
