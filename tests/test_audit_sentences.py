"""Issue 15 item 5: the audit log read as sentences with names, details as labelled fields, filters by name."""

from __future__ import annotations

import ast
import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, Role
from app.services import permissions
from app.services.audit import CHECKPOINT_ACTION, record_audit_event
from app.services.audit_choices import action_choices, matching
from app.services.audit_names import ERASED_DEVICE, ERASED_PERSON, Names, possessive, when
from app.services.audit_sentences import SENTENCES, Told, describe_page, read
from tests.equipment_factories import lend, make_asset
from tests.factories import make_device, make_user, sign_in
from tests.permission_factories import ask, committed, make_area
from tests.test_statement_counts import counted

APP = Path(__file__).resolve().parent.parent / "app"
RECORDERS = {"record_audit_event": 2, "record_read": 0, "_audit": 0}
# Call sites whose action is computed: what each can produce. A new computed call site fails the scan
# below until it is listed here, so its actions cannot slip past without sentences.
COMPUTED = {
    ("app/read_audit.py", "action"): [],  # record_read passes its caller's action on; its callers are scanned
    ("app/scim/routes.py", "action"): [],  # _audit passes its caller's action on; its callers are scanned
    ("app/services/accounts.py", "f'user.{purpose}_issued'"): ["user.invite_issued", "user.password_reset_issued"],
    ("app/services/permissions/deciding.py", "f'permission.{request.status}'"): ["permission.approved", "permission.denied"],
    ("app/services/audit.py", "CHECKPOINT_ACTION"): [CHECKPOINT_ACTION],
    ("app/services/retention.py", "action"): [
        "retention.sessions_removed",
        "retention.sign_in_attempts_removed",
        "retention.password_links_removed",
    ],
}


def _literals(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _literals(node.body), _literals(node.orelse)
        return body + orelse if body is not None and orelse is not None else None
    return None


def recorded_actions() -> tuple[set[str], list[str]]:
    """Every action string the code records, and any computed call site not listed in COMPUTED."""
    found: set[str] = set()
    unknown: list[str] = []
    for path in sorted(APP.rglob("*.py")):
        where = path.relative_to(APP.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name not in RECORDERS:
                continue
            action = next((k.value for k in node.keywords if k.arg == "action"), None)
            if action is None and len(node.args) > RECORDERS[name]:
                action = node.args[RECORDERS[name]]
            if action is None:
                continue
            literals = _literals(action)
            if literals is not None:
                found.update(literals)
            elif (where, ast.unparse(action)) in COMPUTED:
                found.update(COMPUTED[where, ast.unparse(action)])
            else:
                unknown.append(f"{where}:{node.lineno} {ast.unparse(action)}")
    return found, unknown


def test_every_recorded_action_has_its_own_sentence():
    actions, unknown = recorded_actions()
    assert not unknown, f"computed actions the scan cannot read (list them in COMPUTED): {unknown}"
    assert len(actions) > 90  # the scan really found the recorders
    missing = sorted(actions - SENTENCES.keys())
    assert not missing, f"actions with no sentence function in app/services/audit_sentences.py: {missing}"
    functions = [SENTENCES[action] for action in actions]
    assert len(set(functions)) == len(functions), "each kind of event has a function of its own"


def test_an_unknown_action_still_reads_as_a_sentence(app):
    with app.app_context():
        actor = make_user(name="Mrs A Adeyemi")
        with write_intent():
            record_audit_event(db.session, actor, "future.thing_done", "thing", 7, {"colour": "blue"})
            db.session.commit()
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "future.thing_done"))
        (view,) = describe_page(db.session, [event])
    assert view.sentence == "Mrs A Adeyemi recorded “future.thing_done”."
    assert view.fields == [("Colour", "blue")]


def test_names_and_times_read_as_people_say_them():
    assert possessive("Mr B Clarke") == "Mr B Clarke's"
    assert possessive("Mrs E Evans") == "Mrs E Evans's"
    assert possessive(ERASED_PERSON) == "a person since erased's"
    assert Names().device(5) == ERASED_DEVICE
    summer = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert when("2026-07-01T09:40:00+00:00", summer) == "10:40"  # British Summer Time
    assert when("2026-07-02T09:40:00+00:00", summer) == "02/07/2026 10:40"
    assert when("2026-12-12") == "12/12/2026"


def test_choosing_by_name_prefers_the_exact_name_and_else_any_name_containing_it():
    options = [("Mr B Clarke", 1), ("Mr B Clarkeson", 2), ("Miss C Davies", 3)]
    assert matching(options, "mr b  clarke") == [1]
    assert matching(options, "clark") == [1, 2]
    assert matching(options, "nobody") == []


def test_kinds_of_event_are_offered_by_label_in_groups():
    groups = dict(action_choices())
    permission_kinds = dict(groups["Permissions"])
    assert permission_kinds["permission.approved"] == "Permission approved"
    assert permission_kinds["permission."] == "All: permissions"
    offered = {value for kinds in groups.values() for value, _label in kinds}
    assert set(SENTENCES) <= offered


# The page ------------------------------------------------------------------------------------------


def _approved_request(frozen_clock):
    frozen_clock.set(datetime(2026, 11, 25, 9, 40, tzinfo=UTC))
    admin, head = make_user(Role.ADMIN, name="Mr T Hughes"), make_user(Role.APPROVER, name="Mrs A Adeyemi")
    teacher = make_user(name="Mr B Clarke")
    phone = make_device(teacher, model="iPhone 13")
    area = make_area(admin, name="Year 3 classroom")
    request = ask(teacher, area, phone)
    committed(permissions.decide, head, request.id, "approve")
    return teacher, phone, area, request


def _office(client):
    office = make_user(Role.OFFICE, name="Ms O Brennan")
    sign_in(client, office)
    return office


def _cards(page: str) -> list[str]:
    return [re.sub(r"\s+", " ", card) for card in re.findall(r'<li class="card">(.*?)</li>', page, re.S)]


def test_a_decision_reads_as_a_sentence_with_names_and_labelled_fields(client, frozen_clock):
    _approved_request(frozen_clock)
    _office(client)
    page = client.get("/audit").get_data(as_text=True)
    approved = next(card for card in _cards(page) if "approved" in card)
    assert "Mrs A Adeyemi approved Mr B Clarke&#39;s Apple iPhone 13 for Year 3 classroom until 10:40." in approved
    assert "<dt>Area</dt><dd>Year 3 classroom</dd>" in approved
    assert "<dt>Approved until</dt><dd>10:40</dd>" in approved
    assert "25/11/2026 09:40" in approved and "Permission approved" in approved
    assert "permission.approved" not in approved and "{" not in approved and "permission_request" not in approved
    asked = next(card for card in _cards(page) if "asked to use" in card)
    assert "Mr B Clarke asked to use their Apple iPhone 13 in Year 3 classroom until 10:40." in asked
    assert "<dt>Device</dt><dd>Mr B Clarke&#39;s Apple iPhone 13</dd>" in asked
    assert "<dt>Reason</dt><dd>Expecting an urgent call</dd>" in asked


def test_times_are_shown_in_london_time_in_summer(client, frozen_clock):
    frozen_clock.set(datetime(2026, 7, 1, 12, 5, tzinfo=UTC))
    make_device(make_user(name="Miss C Davies"))
    _office(client)
    page = client.get("/audit").get_data(as_text=True)
    registered = next(card for card in _cards(page) if "registered" in card)
    assert "01/07/2026 13:05" in registered and "Miss C Davies registered their Apple iPhone 13." in registered
    assert "<dt>Kind</dt><dd>Smartphone</dd>" in registered


def test_an_erased_device_and_person_read_as_since_erased(client):
    _office(client)
    with write_intent():
        record_audit_event(db.session, None, "device.retired", "personal_device", 987654, {"previous_status": "active"})
        record_audit_event(db.session, None, "user.deactivated", "user", 987654)
        db.session.commit()
    cards = _cards(client.get("/audit").get_data(as_text=True))
    assert any("Lanyard retired a device since erased." in card for card in cards)
    assert any("Lanyard deactivated a person since erased&#39;s account." in card for card in cards)


def test_a_loan_names_the_borrower_and_the_equipment(client):
    office = _office(client)
    camera = make_asset(office, name="Class camera", tag="CAM-0042")
    borrower = make_user(name="Mrs E Evans")
    lend(office, camera, borrower)
    cards = _cards(client.get("/audit?action=loan.").get_data(as_text=True))
    assert len(cards) == 1
    assert "Ms O Brennan lent Class camera (CAM-0042) to Mrs E Evans, due back" in cards[0]
    assert "<dt>Borrower</dt><dd>Mrs E Evans</dd>" in cards[0]
    assert "Loan id" not in cards[0]  # internal numbers stay in the CSV


def test_filters_choose_a_person_device_asset_and_area_by_name(client, frozen_clock):
    _approved_request(frozen_clock)
    other = make_user(name="Miss C Davies")
    make_device(other, model="Pixel 8")
    make_area(make_user(Role.ADMIN), name="Hall")
    office = _office(client)
    make_asset(office, name="Class camera", tag="CAM-0042")
    page = client.get("/audit").get_data(as_text=True)
    for suggestion in ("Mr B Clarke", "Mr B Clarke&#39;s Apple iPhone 13", "Class camera (CAM-0042)", "Year 3 classroom"):
        assert f'<option value="{suggestion}">' in page
    assert 'list="device-names"' in page and 'inputmode="numeric"' not in page and "number" not in page.lower().split("<ol")[0]

    def actions(query: dict) -> list[str]:
        return [card for card in _cards(client.get("/audit", query_string=query).get_data(as_text=True))]

    by_device = actions({"device": "Mr B Clarke's Apple iPhone 13", "action": "permission."})
    assert len(by_device) == 2 and all("iPhone 13" in card for card in by_device)
    by_area = actions({"area": "Year 3 classroom"})
    assert any("added the area Year 3 classroom" in card for card in by_area) and not any("Hall" in c for c in by_area)
    assert any("<dt>Rule</dt><dd>Ask permission</dd>" in card for card in by_area)
    assert any("Class camera" in card for card in actions({"asset": "class camera"}))
    by_person = actions({"person": "Davies"})
    assert by_person and all("Miss C Davies" in card for card in by_person)
    assert actions({"device": "a phone nobody has"}) == []


def test_the_kind_of_event_filter_shows_labels_and_keeps_the_choice(client, frozen_clock):
    _approved_request(frozen_clock)
    _office(client)
    page = client.get("/audit?action=permission.approved").get_data(as_text=True)
    assert '<option value="permission.approved" selected>Permission approved</option>' in page
    assert '<optgroup label="Permissions">' in page
    cards = _cards(page)
    assert len(cards) == 1 and "approved" in cards[0]


def test_the_csv_keeps_its_machine_readable_columns_and_follows_the_name_filters(client, frozen_clock):
    request = _approved_request(frozen_clock)[3]
    _office(client)
    response = client.get("/audit/export.csv", query_string={"area": "Year 3 classroom", "action": "permission."})
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == [
        "seq",
        "occurred_at_utc",
        "actor_id",
        "actor",
        "action",
        "subject_type",
        "subject_id",
        "details",
        "ip",
        "user_agent",
        "hash",
    ]
    assert [r[4] for r in rows[1:]] == ["permission.requested", "permission.approved"]
    assert {r[6] for r in rows[1:]} == {str(request.id)} and rows[2][7].startswith("{")


def test_names_are_read_in_one_batch_whatever_the_page_holds(app, client):
    office = _office(client)
    first = make_user(name="Mr F First")
    make_device(first)
    lend(office, make_asset(office), first)
    client.get("/audit")

    def statements_for_page() -> int:
        with counted(app) as statements:
            assert client.get("/audit").status_code == 200
        return len(statements)

    few = statements_for_page()
    for n in range(6):
        person = make_user(name=f"Mr P Person{n}")
        make_device(person)
        lend(office, make_asset(office), person)
    assert statements_for_page() == few


def test_staff_without_a_reading_role_see_no_sentences(client):
    sign_in(client, make_user(name="Mr B Clarke"))
    assert client.get("/audit").status_code == 403
    assert client.get("/audit/export.csv?person=Clarke").status_code == 403


def test_every_sentence_reads_even_when_its_details_and_names_are_missing():
    """Old events, erased subjects and details from before a field existed must still read as a sentence."""
    for action in SENTENCES:
        event = AuditEvent(seq=1, occurred_at=datetime(2026, 7, 1, tzinfo=UTC), actor_id=5, action=action, subject_id="9")
        text = read(Told(event, Names(), {}))
        assert text[0].isupper(), (action, text)
        assert text.endswith("."), (action, text)
        for wrong in ("None", "{", "_", "“”", "  ", " .", " ,", ": .", "?"):
            assert wrong not in text, (action, wrong, text)
