"""One route helper turns a service's refusal into form messages (or problem details) and settles the transaction;
route modules hold no queries and no hand-written ``except ValidationFailed``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from flask import get_flashed_messages, render_template_string
from wtforms import Form, StringField

from app.database import write_intent
from app.extensions import db
from app.forms_support import apply_to_form, refusal_problem, refused
from app.models import Role, User
from app.services import accounts
from app.services.errors import Conflict, DomainError, NotFound, ValidationFailed

APP = Path(__file__).resolve().parent.parent / "app"
ROUTE_VERBS = {"route", "get", "post", "put", "patch", "delete"}
QUERY_CALLS = {"execute", "scalar", "scalars", "query", "get"}


def _refusal_names() -> set[str]:
    """Every DomainError class's name (ValidationFailed, Conflict, ImportRefused...), once the app is imported."""
    import app  # noqa: F401  (the features define their own refusals)
    from app.services import asset_csv, permissions, staff_import  # noqa: F401

    found, todo = set(), [DomainError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


REFUSALS = _refusal_names()


class NameForm(Form):
    name = StringField("Name")


class KeptRefusal(ValidationFailed):
    keep_changes = True


# Scanning the route modules ------------------------------------------------------------------------


def _is_route(function: ast.FunctionDef) -> bool:
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr in ROUTE_VERBS and isinstance(target.value, ast.Name):
            return True
    return False


def route_modules() -> list[Path]:
    """Every module under app/ (not the services) that declares a route, plus the JSON API's modules."""
    found = []
    for path in sorted(APP.rglob("*.py")):
        if "services" in path.relative_to(APP).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if path.parent.name == "api" or any(isinstance(n, ast.FunctionDef) and _is_route(n) for n in ast.walk(tree)):
            found.append(path)
    return found


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def queries_in(source: str) -> list[str]:
    """``db.session.execute(...)``, ``db.session.get(...)``, ``select(...)``, ``Model.query``: a query in a route module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if (name.endswith("select") and name.split(".")[-1] == "select") or (
                name.startswith("db.session.") and name.split(".")[-1] in QUERY_CALLS
            ):
                found.append(f"line {node.lineno}: {name}()")
        elif isinstance(node, ast.Attribute) and node.attr == "query" and isinstance(node.ctx, ast.Load):
            found.append(f"line {node.lineno}: {_dotted(node)}")
    return found


def refusals_caught_in(source: str) -> list[str]:
    """``except ValidationFailed`` (or any other refusal, alone or in a tuple) written by hand in a route module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            types = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            names = {_dotted(t).split(".")[-1] for t in types}
            if names & REFUSALS:
                found.append(f"line {node.lineno}: except {', '.join(sorted(names))}")
    return found


def test_the_scan_finds_the_route_modules():
    names = {str(p.relative_to(APP)) for p in route_modules()}
    assert {
        "permissions/routes.py",
        "equipment/routes.py",
        "admin/settings.py",
        "auth/passkey_routes.py",
        "api/devices.py",
    } <= names
    assert not any(name.startswith("services/") for name in names)


def test_the_scan_would_catch_a_query_and_a_hand_written_refusal():
    source = (
        "def page():\n"
        "    rows = db.session.scalars(db.select(User)).all()\n"
        "    one = db.session.get(User, 1)\n"
        "    old = User.query.all()\n"
        "    try:\n"
        "        save()\n"
        "    except (ValidationFailed, Conflict) as error:\n"
        "        pass\n"
    )
    assert len(queries_in(source)) == 4
    assert refusals_caught_in(source) == ["line 7: except Conflict, ValidationFailed"]
    assert queries_in("session.get('sid')\nrequest.args.get('q')\n") == []


@pytest.mark.parametrize("path", route_modules(), ids=lambda p: str(p.relative_to(APP)))
def test_route_modules_hold_no_queries_and_leave_refusals_to_the_helper(path):
    source = path.read_text(encoding="utf-8")
    assert queries_in(source) == [], "move these queries into a service"
    assert refusals_caught_in(source) == [], "use app.forms_support.refused (or refusal_problem) instead"


# The helper -----------------------------------------------------------------------------------------


def test_messages_go_on_named_fields_and_the_rest_to_the_form_level(app):
    form = NameForm()
    apply_to_form(
        form, ValidationFailed("Some details need correcting.", {"name": ["Give a name."], "colour": ["Choose a colour."]})
    )
    assert form.name.errors == ["Give a name."]
    assert form.form_errors == ["Choose a colour."]

    bare = NameForm()
    apply_to_form(bare, Conflict("Someone else changed it first."))
    assert bare.form_errors == ["Someone else changed it first."] and not bare.name.errors

    quiet = NameForm()
    apply_to_form(quiet, Conflict("Shown in a callout."), summary=False)
    assert quiet.form_errors == [] and quiet.errors == {}


def test_the_error_summary_shows_form_level_messages(app):
    form = NameForm()
    apply_to_form(form, ValidationFailed("Refused.", {"name": ["Give a name."], "colour": ["Choose a colour."]}))
    with app.test_request_context("/"):
        html = render_template_string('{% from "_macros.html" import error_summary %}{{ error_summary(form) }}', form=form)
    assert '<a href="#name">Name: Give a name.</a>' in html
    assert "<li>Choose a colour.</li>" in html


def _new_person(name: str) -> int:
    with write_intent():
        user = accounts.create_user(db.session, None, email=f"{name}@school.example", display_name=name, roles={Role.STAFF})
    return user.id


def test_a_refusal_onto_a_form_rolls_back_and_is_true(app):
    form = NameForm()
    with app.test_request_context("/"), refused(form) as refusal:
        user_id = _new_person("dropped")
        raise ValidationFailed("Give a name.", {"name": ["Give a name."]})
    assert refusal and refusal.message == "Give a name." and refusal.field_errors == {"name": ["Give a name."]}
    assert form.name.errors == ["Give a name."]
    assert db.session.get(User, user_id) is None


def test_a_refusal_that_keeps_its_changes_is_committed(app):
    with app.test_request_context("/"), refused(NameForm(), KeptRefusal) as refusal:
        user_id = _new_person("kept")
        raise KeptRefusal("Refused, and the attempt is audited.")
    assert refusal
    db.session.rollback()
    assert db.session.get(User, user_id) is not None


def test_without_a_form_the_message_is_flashed_or_left_to_the_route(app):
    with app.test_request_context("/"):
        with refused(None, Conflict) as refusal:
            raise Conflict("Already ended.")
        assert refusal and get_flashed_messages(with_categories=True) == [("error", "Already ended.")]
    with app.test_request_context("/"):
        with refused(None, Conflict, flash_as=None) as quiet:
            raise Conflict("Said by the route.")
        assert quiet and get_flashed_messages() == []


def test_other_errors_pass_through_and_no_error_is_false(app):
    with app.test_request_context("/"):
        with pytest.raises(NotFound), refused(NameForm()):
            raise NotFound("There is no such thing.")
        with refused(NameForm()) as refusal:
            pass
    assert not refusal and refusal.error is None and refusal.message == "" and refusal.field_errors == {}


def test_two_helpers_side_by_side_catch_each_their_own(app):
    form = NameForm()
    with app.test_request_context("/"), refused(form) as invalid, refused(None, Conflict) as clash:
        raise Conflict("Decided already.")
    assert clash and not invalid and form.errors == {}


def test_the_api_answer_is_problem_details(app):
    error = ValidationFailed("Some details need correcting.", {"name": ["Give a name."]})
    with app.test_request_context("/api/v1/devices"):
        response = refusal_problem(error)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "urn:lanyard:problem:validation-failed" and body["detail"] == "Some details need correcting."
    assert body["errors"] == {"name": ["Give a name."]}
