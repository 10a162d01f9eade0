"""J5: the audit log viewer, its filters and cursor pages, the CSV export and the chain status."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditVerification, Role, User
from app.services.audit import record_audit_event, verify_chain
from tests.conftest import csrf_token
from tests.factories import make_device, make_user, sign_in

XSS = '<img src=x onerror="alert(1)">'


@pytest.fixture
def office_client(client):
    office = make_user(Role.OFFICE, name="Ms O Brennan")
    sign_in(client, office)
    return client


def test_staff_cannot_read_the_audit_log(client):
    sign_in(client, make_user())
    assert client.get("/audit").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403
    assert client.get("/api/v1/audit-events").status_code == 403


@pytest.mark.parametrize("role", [Role.APPROVER, Role.OFFICE, Role.ADMIN, Role.GOVERNOR])
def test_approvers_office_admin_and_the_governor_read_it(client, role):
    sign_in(client, make_user(role))
    assert client.get("/audit").status_code == 200


def test_the_governor_reads_and_exports_but_changes_nothing_else(client):
    governor = make_user(Role.GOVERNOR, name="Dr G Fraser")
    sign_in(client, governor)
    home = client.get("/").get_data(as_text=True)
    assert 'href="/audit"' in home and 'href="/admin/staff"' not in home and 'href="/approvals"' not in home
    assert client.get("/audit/export.csv").status_code == 200
    assert client.get("/api/v1/audit-events").status_code == 200
    for page in ("/admin/staff", "/admin/settings", "/approvals", "/equipment", "/now"):
        assert client.get(page).status_code == 403, page


def test_filter_by_person_device_and_action(office_client):
    clarke, davies = make_user(name="Mr B Clarke"), make_user(name="Miss C Davies")
    clarke_phone = make_device(clarke)
    make_device(davies)
    by_person = office_client.get("/api/v1/audit-events?person=clarke").get_json()["items"]
    assert by_person and all(
        (e["actor"] or {}).get("name") == "Mr B Clarke" or e["subject_id"] == str(clarke.id) for e in by_person
    )
    by_device = office_client.get(f"/api/v1/audit-events?device={clarke_phone.id}").get_json()["items"]
    assert [e["action"] for e in by_device] == ["device.registered"]
    by_action = office_client.get("/api/v1/audit-events?action=user.").get_json()["items"]
    assert {e["action"] for e in by_action} == {"user.created"}
    combined = office_client.get(f"/api/v1/audit-events?person=davies&device={clarke_phone.id}").get_json()["items"]
    assert combined == []


def test_filter_by_dates_in_the_school_time_zone(office_client, frozen_clock):
    frozen_clock.set(frozen_clock.now.replace(month=7, day=1, hour=23, minute=30))  # 00:30 on 2 July in London
    make_user(name="Summer Person")
    frozen_clock.advance(days=3)
    make_user(name="Later Person")
    items = office_client.get("/api/v1/audit-events?since=2026-07-02&until=2026-07-02&action=user.").get_json()["items"]
    assert len(items) == 1
    assert office_client.get("/api/v1/audit-events?since=2026-07-03&until=2026-07-04&action=user.").get_json()["items"] == []


def test_cursor_pages_walk_back_without_repeats(office_client):
    owner = make_user()
    with write_intent():
        for n in range(120):
            record_audit_event(db.session, owner, "test.event", "thing", n)
        db.session.commit()
    seen, before = [], None
    while True:
        page = office_client.get("/api/v1/audit-events?action=test." + (f"&before={before}" if before else "")).get_json()
        seen += [e["seq"] for e in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert len(seen) == 120 and len(set(seen)) == 120 and seen == sorted(seen, reverse=True)
    html = office_client.get("/audit?action=test.").get_data(as_text=True)
    assert "Older events" in html


def test_markup_in_names_and_details_is_shown_inert(office_client):
    villain = make_user(name=XSS)
    with write_intent():
        record_audit_event(db.session, villain, "test.event", "thing", 1, {"note": XSS})
        db.session.commit()
    page = office_client.get("/audit").get_data(as_text=True)
    assert XSS not in page
    assert "&lt;img src=x onerror=" in page


def test_csv_export_streams_every_match_and_guards_against_formulas(office_client):
    attacker = make_user(name='=HYPERLINK("http://evil")')
    with write_intent():
        record_audit_event(db.session, attacker, "test.event", "thing", 1, {"note": "+SUM(A1)"})
        db.session.commit()
    response = office_client.get("/audit/export.csv")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).removeprefix("\ufeff"))))
    assert rows[0][:3] == ["seq", "occurred_at_utc", "actor_id"]
    attacker_rows = [r for r in rows if r[4] == "test.event"]
    assert attacker_rows[0][3].startswith("'=HYPERLINK")
    assert [int(r[0]) for r in rows[1:]] == sorted(int(r[0]) for r in rows[1:])


def test_verify_now_records_the_result_and_the_page_shows_it(office_client):
    make_device(make_user())
    office_client.post("/audit/verify", data={"csrf_token": csrf_token(office_client, "/audit")})
    latest = db.session.scalar(sa.select(AuditVerification).order_by(AuditVerification.id.desc()))
    assert latest.broken_at_seq is None and latest.verified_count > 0
    page = office_client.get("/audit").get_data(as_text=True)
    assert "Verified" in page and f"up to event {latest.last_seq}" in page
    api = office_client.get("/api/v1/audit-events/verify").get_json()
    assert api["latest"]["ok"] is True


@pytest.mark.sqlite_only
def test_verifying_never_holds_the_write_lock_while_it_walks_the_chain(office_client, monkeypatch):
    """On SQLite, other writers go on while a million events are walked (DESIGN.md section 10)."""
    import sqlite3

    from app.services import audit_log as audit_log_service

    make_device(make_user())
    database = db.engine.url.database
    walked = []

    def walk_while_someone_writes(session, head):
        other = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the verifier held the lock
            other.execute("ROLLBACK")
        finally:
            other.close()
        walked.append(True)
        return verify_chain(session, head)

    monkeypatch.setattr(audit_log_service, "verify_chain", walk_while_someone_writes)
    response = office_client.post("/audit/verify", data={"csrf_token": csrf_token(office_client, "/audit")})
    assert response.status_code == 302 and walked == [True]
    assert db.session.scalar(sa.select(AuditVerification).order_by(AuditVerification.id.desc())).broken_at_seq is None


def test_a_broken_chain_is_shown_with_the_first_broken_link(office_client):
    make_device(make_user())
    if db.engine.dialect.name == "sqlite":
        db.session.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        db.session.execute(sa.text("UPDATE audit_events SET action = 'forged' WHERE seq = 2"))
    else:
        db.session.execute(sa.text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change"))
        db.session.execute(sa.text("UPDATE audit_events SET action = 'forged' WHERE seq = 2"))
        db.session.execute(sa.text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_change"))
    db.session.commit()
    result = office_client.post(
        "/api/v1/audit-events/verify", headers={"X-CSRFToken": csrf_token(office_client, "/audit")}
    ).get_json()
    assert result["latest"]["ok"] is False and result["latest"]["broken_at_seq"] == 2
    assert "Broken" in office_client.get("/audit").get_data(as_text=True)


def test_links_are_append_only_too(app):
    make_user()
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        db.session.execute(sa.text("DELETE FROM audit_links"))
        db.session.flush()
    db.session.rollback()


def test_permission_events_are_found_by_area_and_by_requester(office_client):
    from app.models import Area
    from app.services import areas, permissions

    admin, teacher = make_user(Role.ADMIN), make_user(name="Mr B Clarke")
    phone = make_device(teacher)
    with write_intent():
        hall = areas.create_area(db.session, admin, name="Hall", rule="ask")
        request = permissions.request_permission(
            db.session, teacher, hall, device_key=f"personal-{phone.id}", reason="urgent_call", duration="one_hour"
        )
        db.session.commit()
    area_id = db.session.scalar(sa.select(Area.id).where(Area.name == "Hall"))
    by_area = {e["action"] for e in office_client.get(f"/api/v1/audit-events?area={area_id}").get_json()["items"]}
    assert {"area.created", "permission.requested"} <= by_area
    by_device = office_client.get(f"/api/v1/audit-events?device={phone.id}&action=permission.").get_json()["items"]
    assert [e["subject_id"] for e in by_device] == [str(request.id)]


def test_date_filters_find_events_whose_clock_went_backwards(office_client, frozen_clock):
    """Date ranges are read as a band of seqs; an event recorded after a clock step back is still inside it."""
    owner = make_user(name="Clock Person")

    def record(n: int) -> None:
        with write_intent():
            record_audit_event(db.session, owner, "clock.event", "thing", n, related={"area": 4})
            db.session.commit()

    frozen_clock.set(frozen_clock.now.replace(month=7, day=10, hour=9))
    record(1)
    frozen_clock.set(frozen_clock.now.replace(day=2))  # the clock stepped back eight days
    record(2)
    frozen_clock.set(frozen_clock.now.replace(day=10, hour=10))
    record(3)

    def subjects(query: str) -> list[str]:
        return [e["subject_id"] for e in office_client.get("/api/v1/audit-events?action=clock." + query).get_json()["items"]]

    assert subjects("&since=2026-07-02&until=2026-07-02") == ["2"]
    assert subjects("&since=2026-07-10&until=2026-07-10") == ["3", "1"]
    assert subjects("&since=2026-07-10&until=2026-07-10&area=4") == ["3", "1"]
    assert subjects("&since=2026-07-01&until=2026-07-31&area=4") == ["3", "2", "1"]
    assert subjects("&since=2026-07-03&until=2026-07-09") == []
    assert subjects("&since=2026-08-01&until=2026-08-31") == []
    rows = list(
        csv.reader(
            io.StringIO(
                office_client.get("/audit/export.csv?since=2026-08-01&until=2026-08-31")
                .get_data(as_text=True)
                .removeprefix("\ufeff")
            )
        )
    )
    assert len(rows) == 1 and rows[0][0] == "seq"
    rows = list(
        csv.reader(
            io.StringIO(
                office_client.get("/audit/export.csv?since=2026-07-10&until=2026-07-10&action=clock.")
                .get_data(as_text=True)
                .removeprefix("\ufeff")
            )
        )
    )
    assert [r[6] for r in rows[1:]] == ["1", "3"]


def test_date_filtered_pages_walk_back_without_repeats(office_client, frozen_clock):
    owner = make_user()
    frozen_clock.set(frozen_clock.now.replace(month=3, day=4, hour=9))
    with write_intent():
        for n in range(75):
            record_audit_event(db.session, owner, "test.event", "thing", n)
        db.session.commit()
    seen, before = [], None
    while True:
        query = "?since=2026-03-04&until=2026-03-04&action=test." + (f"&before={before}" if before else "")
        page = office_client.get("/api/v1/audit-events" + query).get_json()
        seen += [int(e["subject_id"]) for e in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == list(range(74, -1, -1))


def test_a_name_matching_several_people_pages_through_all_their_events(office_client):
    first, second, other = make_user(name="Pat Twin"), make_user(name="Sam Twin"), make_user(name="Someone Else")
    with write_intent():
        for n in range(70):
            record_audit_event(db.session, (first, second, other)[n % 3], "twin.event", "thing", n)
        db.session.commit()
    seen, before = [], None
    while True:
        page = office_client.get(
            "/api/v1/audit-events?person=twin&action=twin." + (f"&before={before}" if before else "")
        ).get_json()
        seen += [int(e["subject_id"]) for e in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == [n for n in range(69, -1, -1) if n % 3 != 2]


@pytest.fixture
def a_trust(monkeypatch):
    """Too many names to list in the page: every box asks for its suggestions as the person types."""
    from app.services import audit_choices

    monkeypatch.setattr(audit_choices, "INLINE_LIMIT", 0)


def _events_shown(page: str) -> set[int]:
    return {int(seq) for seq in re.findall(r"· event (\d+)</p>", page)}


def test_a_trust_s_audit_page_lists_no_names_and_its_boxes_ask_for_them(office_client, a_trust):
    make_device(make_user(name="Mr B Clarke"), make="Apple", model="iPhone 13")
    make_user(name="Mrs E Evans")
    page = office_client.get("/audit").get_data(as_text=True)
    lists = dict(re.findall(r'<datalist id="(\w+)-names"[^>]*>(.*?)</datalist>', page))
    assert lists == {"person": "", "device": "", "asset": "", "area": ""}
    assert 'id="person-names" data-suggest="/audit/names?kind=person"' in page

    def names(kind, typed):
        answer = office_client.get("/audit/names", query_string={"kind": kind, "q": typed})
        assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
        return answer.get_json()["names"]

    assert names("person", "clar") == ["Mr B Clarke"]
    assert names("device", "clarke's apple iph") == ["Mr B Clarke's Apple iPhone 13"]
    assert names("device", "Apple iPh") == ["Mr B Clarke's Apple iPhone 13"]  # across make and model
    assert names("person", "c") == []  # one letter asks nothing
    assert names("nothing", "clarke") == []
    assert names("person", "100%") == []


def test_a_trust_filters_by_a_suggested_name_through_the_indexes(office_client, a_trust):
    from tests.equipment_factories import make_asset

    clarke = make_user(name="Mr B Clarke")
    evans = make_user(name="Mrs E Evans")
    phone = make_device(clarke, make="Apple", model="iPhone 13")
    pixel = make_device(evans, make="Google", model="Pixel 8")
    camera = make_asset(make_user(Role.OFFICE), tag="CAM-0042", name="Class camera")
    with write_intent():
        shown = record_audit_event(
            db.session, evans, "device.imei_revealed", "personal_device", phone.id, related={"personal_device": phone.id}
        )
        changed = record_audit_event(db.session, evans, "asset.updated", "asset", camera.id, related={"asset": camera.id})
        db.session.commit()
        shown_seq, changed_seq = shown.seq, changed.seq

    def shown_for(**query):
        return _events_shown(office_client.get("/audit", query_string=query).get_data(as_text=True))

    by_device = shown_for(device="Mr B Clarke's Apple iPhone 13")
    assert shown_seq in by_device and changed_seq not in by_device
    assert by_device == shown_for(device="Clarke")  # part of the name means the same device here
    by_evans_device = shown_for(device="Mrs E Evans's Google Pixel 8")
    assert by_evans_device and shown_seq not in by_evans_device and by_evans_device == shown_for(device="Pixel")
    assert pixel.id != phone.id
    by_asset = shown_for(asset="Class camera (CAM-0042)")
    assert changed_seq in by_asset and shown_seq not in by_asset
    assert shown_for(asset="cam-0042") == by_asset


def test_a_box_lists_its_names_up_to_the_inline_limit_and_asks_above_it(app, monkeypatch):
    from app.services import audit_choices

    for name in ("Amy Ash", "Ben Birch"):
        make_user(name=name)
    people_before = db.session.scalar(sa.select(sa.func.count()).select_from(User))
    monkeypatch.setattr(audit_choices, "INLINE_LIMIT", people_before)
    assert not audit_choices.too_many_to_list(db.session, "person")
    assert "Amy Ash" in audit_choices.suggestions(db.session)["person"]
    make_user(name="Cat Cedar")
    assert audit_choices.too_many_to_list(db.session, "person")
    assert audit_choices.suggestions(db.session)["person"] is None
