"""/api/v1/openapi.json must describe exactly the routes the server has."""

from __future__ import annotations

import re


def _spec_path(rule: str) -> str:
    path = rule.removeprefix("/api/v1")
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", path)


def test_every_api_route_is_described_and_nothing_else(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    described = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    served = {
        (_spec_path(rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "api.openapi_json"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served - described == set(), "routes missing from the OpenAPI description"
    assert described - served == set(), "described routes the server does not have"


def test_every_reference_resolves(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    text = str(spec)
    for name in re.findall(r"#/components/schemas/([A-Za-z]+)", text):
        assert name in spec["components"]["schemas"], name
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation.get("operationId"), f"{method} {path} has no operationId"
            for parameter in re.findall(r"{([a-z_]+)}", path):
                names = [p["name"] for p in operation.get("parameters", [])]
                assert parameter in names, f"{method} {path} does not describe {parameter}"
