"""API shapes come from one definition: the pydantic models in app/api (issue 12, item 1)."""

from __future__ import annotations

import re

from pydantic import BaseModel

from app.api import openapi
from app.api.devices import Device, DeviceInput
from app.api.shapes import ID_LIST_MESSAGE, ID_MESSAGE, Body, Shape
from app.models import Role
from tests.conftest import csrf_token
from tests.factories import make_device, make_user, sign_in
from tests.permission_factories import make_area


def _headers(client) -> dict:
    return {"X-CSRFToken": csrf_token(client, "/devices")}


def test_every_component_schema_is_generated_from_a_model(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    generated: dict[str, dict] = {}
    for model, mode in openapi._models.values():
        schema = model.model_json_schema(ref_template=openapi.REF_TEMPLATE, mode=mode)
        generated.update(schema.pop("$defs", {}))
        generated[model.__name__] = schema
    assert spec["components"]["schemas"] == generated
    assert {
        "Device",
        "DeviceInput",
        "PermissionRequest",
        "Asset",
        "Loan",
        "AuditEvent",
        "PushSubscription",
        "Me",
        "Problem",
    } <= set(generated)


def test_every_body_and_answer_names_a_model(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    models = {name: model for name, (model, _mode) in openapi._models.items()}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                [ref] = re.findall(r"#/components/schemas/(\w+)", str(operation["requestBody"]))
                assert issubclass(models[ref], Body), (method, path)
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json")
                if content is not None:
                    assert set(content["schema"]) == {"$ref"}, (method, path, status)
                    name = content["schema"]["$ref"].rsplit("/", 1)[1]
                    assert issubclass(models[name], BaseModel) and not issubclass(models[name], Body), (method, path, status)


def test_bodies_are_models_that_refuse_unknown_fields_and_answers_are_shapes():
    assert DeviceInput.model_config["extra"] == "forbid" and DeviceInput.model_config["strict"]
    assert issubclass(Device, Shape)
    schema = DeviceInput.model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["kind"]["enum"] == ["smartphone", "smartwatch", "tablet", "camera", "other_recording"]


def test_an_answer_has_exactly_its_models_fields(client):
    user = make_user()
    make_device(user)
    sign_in(client, user)
    [item] = client.get("/api/v1/devices").get_json()["items"]
    assert set(item) == set(Device.model_fields)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", item["created_at"]), item["created_at"]


def _problem(response) -> dict:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "urn:lanyard:problem:validation-failed" and body["status"] == 422 and body["detail"]
    return body["errors"]


def test_a_body_the_model_refuses_is_a_problem_per_field(client):
    user = make_user(Role.APPROVER)
    sign_in(client, user)
    headers = _headers(client)
    wrong = client.post("/api/v1/devices", json={"make": 5, "model": None, "kind": "tablet"}, headers=headers)
    assert _problem(wrong) == {"make": ["Must be a string."], "model": ["Must be a string."]}
    lost = client.post(f"/api/v1/devices/{make_device(user).id}/report-lost", json={"stolen": "yes"}, headers=headers)
    assert _problem(lost) == {"stolen": ["Must be true or false."]}
    ids = client.post(
        "/api/v1/standing-permissions",
        json={"person_id": 2**40, "area_ids": [1, True], "starts_on": "31/12", "ends_on": "2026-12-31", "reason": "x"},
        headers=headers,
    )
    assert _problem(ids) == {
        "person_id": [ID_MESSAGE],
        "area_ids": [ID_LIST_MESSAGE],
        "starts_on": ["Use a date like 2026-12-31."],
    }
    missing = client.post("/api/v1/permission-requests", json={"area_id": make_area(user, "Year 4").id}, headers=headers)
    assert set(_problem(missing)) == {"device", "reason", "duration"}


def test_unknown_fields_are_named_only_when_they_look_like_names(client):
    sign_in(client, make_user())
    headers = _headers(client)
    named = client.post("/api/v1/devices", json={"make": 5, "colour": "red"}, headers=headers)
    assert _problem(named) == {"colour": ["Unknown field."]}
    hostile = client.post("/api/v1/devices", json={"<img src=x onerror=alert(1)>": 1}, headers=headers)
    errors = _problem(hostile)
    assert errors == {"body": ["Fields that are not part of this resource were sent."]}
    assert "onerror" not in hostile.get_data(as_text=True)


def test_nested_and_absent_bodies(client):
    sign_in(client, make_user())
    headers = {"X-CSRFToken": csrf_token(client, "/notifications")}
    not_object = client.post(
        "/api/v1/push-subscriptions", json={"endpoint": "https://fcm.googleapis.com/x", "keys": "k"}, headers=headers
    )
    assert _problem(not_object) == {"keys": ["Expected an object with p256dh and auth."]}
    nested = client.post(
        "/api/v1/push-subscriptions", json={"endpoint": "https://fcm.googleapis.com/x", "keys": {"p256dh": 1}}, headers=headers
    )
    assert _problem(nested) == {"p256dh": ["Must be a string."], "auth": ["This is required."]}
    for body in ([1, 2], "text", 3):
        assert _problem(client.post("/api/v1/push-actions", json=body)) == {"body": ["Expected a JSON object."]}
    assert _problem(client.post("/api/v1/push-actions", data="token=x")) == {"body": ["Expected JSON."]}


_CONSTRAINT_KEYS = {"maxLength", "minLength", "pattern", "enum", "minimum", "maximum", "maxItems", "format"}


def _body_models() -> list[type[Body]]:
    return [model for model, mode in openapi._models.values() if mode == "validation"]


def test_every_constraint_a_body_describes_is_one_its_model_checks():
    """The description promises nothing the checks do not hold (issue 19, item 5): no rule only in words."""
    assert len(_body_models()) >= 15
    for model in _body_models():
        for name, field in model.model_fields.items():
            extra = field.json_schema_extra
            described_only = set(extra) & (_CONSTRAINT_KEYS - {"format"}) if isinstance(extra, dict) else set()
            assert not described_only, (model.__name__, name, described_only)


def test_bodies_carry_required_fields_lengths_and_choices(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    device = schemas["DeviceInput"]
    assert set(device["required"]) == {"make", "model"}
    assert device["properties"]["make"].items() >= {"minLength": 1, "maxLength": 60, "pattern": r"\S"}.items()
    assert "required" not in schemas["DeviceChanges"] and "default" not in schemas["DeviceChanges"]["properties"]["make"]
    assert set(schemas["AssetInput"]["required"]) == {"tag", "name", "kind"}
    assert schemas["AssetInput"]["properties"]["tag"]["maxLength"] == 40
    assert set(schemas["PermissionRequestInput"]["required"]) == {"area_id", "device", "reason", "duration"}
    assert schemas["PermissionRequestInput"]["properties"]["device"]["pattern"] == "^(personal|asset)-[0-9]{1,10}$"
    assert schemas["Decision"]["properties"]["decision"]["enum"] == ["approve", "deny"]
    assert set(schemas["PushSubscriptionInput"]["required"]) == {"endpoint", "keys"}
    assert set(schemas["PushKeys"]["required"]) == {"p256dh", "auth"}
    assert schemas["StandingPermissionInput"]["properties"]["person_id"].items() >= {"minimum": 1, "maximum": 2**31 - 1}.items()


def test_a_value_outside_its_constraints_is_refused_by_name(client):
    sign_in(client, make_user())
    headers = _headers(client)
    long = client.post("/api/v1/devices", json={"make": "A" * 61, "model": " ", "kind": "toaster"}, headers=headers)
    assert _problem(long) == {
        "make": ["Use at most 60 characters."],
        "model": ["Must not be empty or only spaces."],
        "kind": ["Must be one of smartphone, smartwatch, tablet, camera, other_recording."],
    }
    missing = client.post("/api/v1/devices", json={"kind": "tablet"}, headers=headers)
    assert _problem(missing) == {"make": ["This is required."], "model": ["This is required."]}
    device = make_device(make_user(Role.OFFICE))
    changed = client.patch(f"/api/v1/devices/{device.id}", json={"serial": "S" * 61}, headers=headers)
    assert changed.status_code in (404, 422)  # another person's device: not found before the body is read


def test_a_change_may_leave_fields_out_but_not_blank_them(client):
    user = make_user()
    device = make_device(user)
    sign_in(client, user)
    headers = _headers(client)
    kept = client.patch(f"/api/v1/devices/{device.id}", json={"description": "Blue case"}, headers=headers)
    assert kept.status_code == 200 and kept.get_json()["make"] == device.make and kept.get_json()["description"] == "Blue case"
    assert _problem(client.patch(f"/api/v1/devices/{device.id}", json={"model": ""}, headers=headers)) == {
        "model": ["Must not be empty or only spaces."]
    }
