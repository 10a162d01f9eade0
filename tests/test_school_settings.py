"""J6 settings beyond numbers and names: the school's logo, its time zone and the push contact."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import sqlalchemy as sa

from app import clock
from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, Role, SchoolLogo
from app.services import school_logo
from app.services.settings import get_setting, set_setting
from tests.conftest import csrf_token
from tests.factories import make_user, sign_in

# A real 1 x 1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da6360f8cfc0f01f0005fe02fea7d6a4"
    "0d0000000049454e44ae426082"
)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def _admin_client(client):
    admin = make_user(Role.ADMIN)
    sign_in(client, admin)
    return admin, csrf_token(client, "/admin/settings")


def _upload(client, token, data: bytes, filename: str = "logo.png"):
    return client.post(
        "/admin/settings/logo",
        data={"csrf_token": token, "logo": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def test_a_logo_is_uploaded_shown_on_every_page_and_served_cacheable(client):
    _admin, token = _admin_client(client)
    assert _upload(client, token, PNG).status_code == 302
    digest = get_setting(db.session, "school.logo")
    assert len(digest) == 64
    home = client.get("/").get_data(as_text=True)
    assert f'src="/school-logo/{digest}"' in home
    image = client.get(f"/school-logo/{digest}")
    assert image.status_code == 200 and image.data == PNG
    assert image.mimetype == "image/png"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert "immutable" in image.headers["Cache-Control"]
    actions = db.session.scalars(sa.select(AuditEvent.subject_id).where(AuditEvent.action == "setting.changed")).all()
    assert "school.logo" in actions


def test_a_new_logo_replaces_the_old_and_removing_it_restores_the_badge(client):
    _admin, token = _admin_client(client)
    _upload(client, token, PNG)
    first = get_setting(db.session, "school.logo")
    _upload(client, token, PNG + b"\x00")
    db.session.commit()
    second = get_setting(db.session, "school.logo")
    assert second != first
    assert client.get(f"/school-logo/{first}").status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SchoolLogo)) == 1
    assert client.post("/admin/settings/logo/remove", data={"csrf_token": token}).status_code == 302
    db.session.commit()
    assert get_setting(db.session, "school.logo") == ""
    assert "/school-logo/" not in client.get("/").get_data(as_text=True)
    assert client.get(f"/school-logo/{second}").status_code == 404


def test_svg_and_oversized_files_are_refused_with_a_clear_message(client):
    _admin, token = _admin_client(client)
    svg = _upload(client, token, SVG, "logo.png")
    assert svg.status_code == 422
    assert "not a PNG, JPEG or WebP image" in svg.get_data(as_text=True)
    big = _upload(client, token, PNG + b"\x00" * (school_logo.MAX_BYTES + 10))
    assert big.status_code == 422
    assert "at most 64 KB" in big.get_data(as_text=True)
    empty = client.post("/admin/settings/logo", data={"csrf_token": token}, content_type="multipart/form-data")
    assert empty.status_code == 422
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SchoolLogo)) == 0
    assert get_setting(db.session, "school.logo") == ""


def test_an_unknown_logo_address_is_not_found(client):
    assert client.get("/school-logo/" + "0" * 64).status_code == 404
    assert client.get("/school-logo/not-a-digest").status_code == 404


def test_the_time_zone_is_checked_and_used_for_every_school_time(client):
    _admin, token = _admin_client(client)
    bad = client.post("/admin/settings", data={"csrf_token": token, "school.time_zone": "Mars/Olympus"})
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert "Enter a time zone from the list" in page and 'value="Mars/Olympus"' in page
    assert client.post("/admin/settings", data={"csrf_token": token, "school.time_zone": "Asia/Tokyo"}).status_code == 302
    db.session.commit()
    moment = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert clock.format_datetime(moment) == "25/11/2026 18:00"
    with write_intent():
        set_setting(db.session, None, "school.time_zone", "Europe/London")
        db.session.commit()
    assert clock.format_datetime(moment) == "25/11/2026 09:00"


def test_school_dates_default_to_london_with_summer_time(app):
    assert clock.format_datetime(datetime(2026, 7, 1, 12, 0, tzinfo=UTC)) == "01/07/2026 13:00"


def test_the_push_contact_is_an_email_address_and_reaches_the_vapid_claim(client):
    _admin, token = _admin_client(client)
    bad = client.post("/admin/settings", data={"csrf_token": token, "push.contact": "not an address"})
    assert bad.status_code == 422 and "Enter an email address" in bad.get_data(as_text=True)
    good = client.post("/admin/settings", data={"csrf_token": token, "push.contact": "mailto:office@st-marys.sch.uk"})
    assert good.status_code == 302
    db.session.commit()
    from app.services import school_settings

    assert get_setting(db.session, "push.contact") == "office@st-marys.sch.uk"
    assert school_settings.push_contact(db.session, "mailto:fallback@example.org") == "mailto:office@st-marys.sch.uk"
    with write_intent():
        set_setting(db.session, None, "push.contact", "")
        db.session.commit()
    assert school_settings.push_contact(db.session, "mailto:fallback@example.org") == "mailto:fallback@example.org"


def test_the_settings_page_is_grouped_with_help_for_each_setting(client):
    """Issue 16 item 8: school, time and lessons, notifications, people, retention; each setting explained."""
    from app.services import school_settings

    sign_in(client, make_user(Role.ADMIN))
    page = client.get("/admin/settings").get_data(as_text=True)
    headings = re.findall(r'<h2 class="group-title">([^<]+)</h2>', page)
    assert headings[:5] == ["School", "Time and lessons", "Notifications", "People", "Retention"]
    assert "Other" not in headings, "every setting belongs to a named group"
    assert "Usual loan length (days)" in page and 'name="loans.default_days" value="7"' in page
    fields = school_settings.setting_fields(db.session)
    assert all(f.help for f in fields), [f.key for f in fields if not f.help]
    for f in fields:
        assert f.help in page.replace("&#39;", "'")


def test_a_refused_setting_is_summarised_for_focus(client):
    sign_in(client, make_user(Role.ADMIN))
    answer = client.post(
        "/admin/settings", data={"csrf_token": csrf_token(client, "/admin/settings"), "loans.default_days": "soon"}
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert '<div class="error-summary" role="alert" tabindex="-1">' in page and "Enter a whole number" in page
