"""The office's device register search and the staff search, answered from the search indexes (0019_search).

Each behaviour is checked on both databases: SQLite answers from FTS5 trigram tables kept in step by
triggers, PostgreSQL from pg_trgm indexes. The results and their order are compared with a plain
reference (a substring of the name, make, model or serial, ignoring case; any part of an IMEI for four
or more digits), which is what the search meant before the indexes.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, PersonalDevice, RegisteredImei, Role, User, UserRole
from app.services import accounts, devices
from tests.factories import make_device, make_imei, make_user, sign_in

HOSTILE = [
    '"',
    '""',
    "'",
    "' OR 1=1 --",
    '" OR "" = "',
    "NEAR(a b)",
    "a* b*",
    "{make model}: x",
    "^abc",
    "clar*",
    "AND OR NOT",
    "-x",
    "\\",
    "\\%",
    "%%%",
    "___",
    "😀😀😀",
    "<script>alert(1)</script>",
    "x" * 100,
    "a\tb\nc",
    "\x00abc",
]


def _register_ids(text: str, **kwargs) -> list[int]:
    return [device.id for device in devices.search_register(db.session, text, **kwargs)]


def _people_ids(text: str) -> list[int]:
    return [person.id for person in accounts.search_people(db.session, text)]


def _reference_register(text: str) -> list[int]:
    """What the register search means, computed in Python over every device."""
    text = text.replace("\x00", "").strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    by_imei = len(digits) >= 4 and len(digits) == len(text.replace(" ", "").replace("-", ""))
    found = []
    for device in db.session.scalars(sa.select(PersonalDevice)):
        fields = (device.owner.display_name, device.make, device.model, device.serial)
        if any(text.lower() in value.lower() for value in fields) or (
            by_imei and any(digits in row.imei for row in device.imeis)
        ):
            found.append(device)
    return [device.id for device in sorted(found, key=lambda d: (d.owner.display_name, d.id))]


def _reference_people(text: str) -> list[int]:
    text = text.replace("\x00", "").strip()
    people = [
        person
        for person in db.session.scalars(sa.select(User))
        if text.lower() in person.display_name.lower() or text.lower() in person.email.lower()
    ]
    return [person.id for person in sorted(people, key=lambda p: (not p.is_active_account, p.display_name))]


@pytest.fixture
def register(app):
    """A small register with names, makes and models that overlap in the ways people search them."""
    clarke = make_user(name="Mr B Clarke", email="bclarke@school.test")
    clarkson = make_user(name="Ms J Clarkson", email="jclarkson@school.test")
    davies = make_user(name="Miss C Davies", email="cdavies@school.test")
    odd = make_user(name="Dr 100% O_Neil", email="oneil@school.test")
    made = {
        "galaxy": make_device(clarke, make="Samsung", model="Galaxy A54", serial="R58N12AB"),
        "pixel": make_device(clarkson, make="Google", model="Pixel 8"),
        "iphone": make_device(davies, make="Apple", model="iPhone 13"),
        "ipad": make_device(davies, kind="tablet", make="Apple", model="iPad Air", imei1=""),
        "underscore": make_device(odd, make="Nokia", model="X_1"),
        "plain": make_device(odd, make="Nokia", model="X21"),
        "quoted": make_device(clarke, kind="tablet", make="Lenovo", model='Tab "Pro" 11', imei1=""),
    }
    return {"people": (clarke, clarkson, davies, odd), **made}


@pytest.mark.parametrize(
    "text",
    ["clar", "Clarke", "B Clar", "CLARKSON", "clarkE", "samsung", "GALAXY a5", "pixel 8", "apple", "ipad air", "r58n"],
)
def test_the_register_finds_by_name_make_model_and_serial_ignoring_case(register, text):
    found = _register_ids(text)
    assert found, text
    assert found == _reference_register(text)


def test_a_surname_prefix_finds_everyone_whose_name_has_it_in_name_order(register):
    found = devices.search_register(db.session, "clark")
    assert [device.owner.display_name for device in found] == ["Mr B Clarke", "Mr B Clarke", "Ms J Clarkson"]
    assert [device.id for device in found[:2]] == sorted([register["galaxy"].id, register["quoted"].id])


def test_the_register_finds_by_the_last_four_digits_or_the_whole_imei(register):
    galaxy = register["galaxy"]
    imei = galaxy.imei1
    for text in (imei[-4:], imei[-6:], imei, imei[3:11], f"{imei[:5]} {imei[5:10]}-{imei[10:]}"):
        found = _register_ids(text)
        assert galaxy.id in found, text
        assert found == _reference_register(text), text
    assert _register_ids(imei[:-1] + str((int(imei[-1]) + 1) % 10)) == []


def test_three_digits_are_not_an_imei_search(register):
    """Fewer than four digits would match most IMEIs: they are searched as text only."""
    text = register["galaxy"].imei1[-3:]
    assert _register_ids(text) == _reference_register(text)


@pytest.mark.parametrize("text", ["a", "A5", "x", "13", "r "])
def test_one_or_two_characters_search_as_before(register, text):
    """Too short for a trigram: compared row by row, with the same meaning."""
    assert _register_ids(text) == _reference_register(text)


def test_typed_like_wildcards_match_only_themselves(register):
    assert _register_ids("x_1") == [register["underscore"].id]
    assert _register_ids("x_") == [register["underscore"].id]
    # Both of Dr O_Neil's devices, by the owner's name; nobody else's.
    assert _register_ids("_") == sorted([register["underscore"].id, register["plain"].id])
    assert _register_ids("100%") == sorted([register["underscore"].id, register["plain"].id])
    assert _register_ids("%") == sorted([register["underscore"].id, register["plain"].id])
    assert _register_ids("%%") == []
    assert _register_ids("x%1") == []
    odd = register["people"][3]
    assert _people_ids("o_n") == [odd.id]
    assert _people_ids("_") == [odd.id]
    assert _people_ids("o%n") == []


def test_double_quotes_in_the_text_are_searched_for_literally(register):
    assert _register_ids('"pro"') == [register["quoted"].id]
    assert _register_ids('tab "pro" 1') == [register["quoted"].id]
    assert _register_ids('"pro') == [register["quoted"].id]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_only_ever_searched_for(register, text):
    assert _register_ids(text) == _reference_register(text)
    assert _people_ids(text) == _reference_people(text)


def test_a_status_filter_and_paging_still_apply(register):
    with write_intent():
        devices.report_lost(db.session, register["people"][2], register["iphone"], stolen=False)
        db.session.commit()
    assert _register_ids("apple", status="lost") == [register["iphone"].id]
    everything = _register_ids("a")
    assert _register_ids("a", limit=2, offset=1) == everything[1:3]


def test_the_staff_search_finds_by_name_or_email_ignoring_case(register):
    clarke, clarkson, davies, _odd = register["people"]
    assert _people_ids("CLARK") == [clarke.id, clarkson.id]
    assert _people_ids("jclark") == [clarkson.id]
    assert _people_ids("@SCHOOL.test") == _reference_people("@school.test")
    assert _people_ids("c dav") == [davies.id]
    assert _people_ids("zzz") == []


def test_the_staff_search_lists_active_people_first(register):
    clarke, clarkson, _davies, _odd = register["people"]
    with write_intent():
        accounts.deactivate_user(db.session, None, clarke)
        db.session.commit()
    assert _people_ids("clark") == [clarkson.id, clarke.id]


def test_the_index_follows_a_new_device_a_change_and_a_removal(register):
    owner = register["people"][2]
    device = make_device(owner, make="Fairphone", model="FP5")
    assert _register_ids("fairph") == [device.id]
    with write_intent():
        details = devices.DeviceDetails(kind="smartphone", make="Fairphone", model="Gen 6", imei1=device.imei1)
        devices.update_device(db.session, owner, device, details)
        db.session.commit()
    assert _register_ids("fp5") == []
    assert _register_ids("gen 6") == [device.id]
    with write_intent():
        db.session.execute(sa.delete(RegisteredImei).where(RegisteredImei.device_id == device.id))
        db.session.execute(sa.delete(PersonalDevice).where(PersonalDevice.id == device.id))
        db.session.commit()
    assert _register_ids("fairph") == []
    _assert_the_indexes_match_the_tables()


def test_the_index_follows_a_changed_imei(register):
    owner = register["people"][2]
    device = register["iphone"]
    old, new, second = device.imei1, make_imei(), make_imei()
    with write_intent():
        details = devices.DeviceDetails(kind="smartphone", make="Apple", model="iPhone 13", imei1=new, imei2=second)
        devices.update_device(db.session, owner, device, details)
        db.session.commit()
    assert _register_ids(old[-6:]) == []
    assert _register_ids(new[-6:]) == [device.id]
    assert _register_ids(second) == [device.id]
    with write_intent():
        db.session.execute(sa.update(RegisteredImei).where(RegisteredImei.imei == second).values(imei=make_imei()))
        db.session.commit()
    assert _register_ids(second) == []
    _assert_the_indexes_match_the_tables()


def test_the_index_follows_a_renamed_and_a_removed_person(register):
    clarke = register["people"][0]
    with write_intent():
        accounts.update_profile(db.session, None, clarke, display_name="Mr B Whitfield")
        db.session.commit()
    assert _people_ids("b clarke") == []
    assert _people_ids("whitf") == [clarke.id]
    assert _register_ids("whitfield") == sorted([register["galaxy"].id, register["quoted"].id])
    assert register["galaxy"].id not in _register_ids("clarke")
    nobody = make_user(name="Mr T Temporary", email="temp@school.test")
    assert _people_ids("tempor") == [nobody.id]
    with write_intent():
        db.session.execute(sa.delete(UserRole).where(UserRole.user_id == nobody.id))
        db.session.execute(sa.delete(User).where(User.id == nobody.id))
        db.session.commit()
    assert _people_ids("tempor") == []
    _assert_the_indexes_match_the_tables()


def test_searching_the_register_is_still_audited(client, register):
    sign_in(client, make_user(Role.OFFICE))
    page = client.get("/office/devices", query_string={"q": "Clarke"}).get_data(as_text=True)
    assert "Galaxy A54" in page and "Pixel 8" not in page
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.seq)).where(AuditEvent.action == "device.register_searched")) == 1


def test_the_staff_page_searches_with_the_index(client, register):
    sign_in(client, make_user(Role.ADMIN))
    page = client.get("/admin/staff", query_string={"q": "clarkson"}).get_data(as_text=True)
    assert "Ms J Clarkson" in page and "Miss C Davies" not in page


def _assert_the_indexes_match_the_tables() -> None:
    """SQLite: the FTS tables hold exactly what the triggers should have put there."""
    if db.engine.dialect.name != "sqlite":
        return
    connection = db.session.connection()
    # An external-content table checks its index against the users table itself.
    connection.execute(sa.text("INSERT INTO users_search (users_search, rank) VALUES ('integrity-check', 1)"))
    stored = set(connection.execute(sa.text("SELECT rowid, make, model, serial, imeis FROM devices_search")))
    expected = {
        (device.id, device.make, device.model, device.serial, " ".join(sorted(row.imei for row in device.imeis)))
        for device in db.session.scalars(sa.select(PersonalDevice))
    }
    normalised = {(rowid, make, model, serial, " ".join(sorted(imeis.split()))) for rowid, make, model, serial, imeis in stored}
    assert normalised == expected


def test_the_audit_logs_person_filter_uses_the_same_search(register):
    from app.services.audit_log import people_matching

    clarke, clarkson, _davies, odd = register["people"]
    assert sorted(people_matching(db.session, "CLARK")) == sorted([clarke.id, clarkson.id])
    assert people_matching(db.session, "jclarkson@") == [clarkson.id]
    assert people_matching(db.session, "o_n") == [odd.id]
    assert people_matching(db.session, "%") == [odd.id]
