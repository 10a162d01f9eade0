"""Hostile text for the stored-XSS tests: script and markup payloads in every user-editable field.

Every value is distinct (it ends ``~NN``), starts with a spreadsheet formula character, carries an HTML
payload and ``{{7*7}}`` (which would show as ``49~NN`` if anything rendered it as a template), so one
value tests escaping, template injection and the CSV guard at once. Links get ``javascript:`` payloads.
The seed goes through the real services, so their validation runs.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from markupsafe import escape

from app.clock import local_today
from app.database import write_intent
from app.models import AreaRule, Passkey, Role
from app.services import accounts, api_tokens, areas, assets, devices, loans, permissions, push, settings, stocktakes

CSV_STARTS = ('=HYPERLINK("http://x")', "+cmd", "-1+1", "@SUM(1)")
HTML_PAYLOADS = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</script><svg onload=alert(1)>",
    "'><img src=x onerror=alert(1)>",
)
TEMPLATE = "{{7*7}}"
JAVASCRIPT = "javascript:alert(1)"
SHORT = "+cmd<script>alert(1)</script>{{7*7}}"

# What must never appear in a page: the payloads as live markup.
RAW_MARKERS = ("<script>alert", "<img src=x onerror", "<svg onload", "</script><svg")
TEMPLATE_RENDERED = re.compile(r"49~\d\d")
LINK_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster", "srcdoc"}


@dataclass
class Hostile:
    """Hands out distinct payload values and remembers them (label -> value) for the coverage check."""

    values: dict[str, str] = field(default_factory=dict)

    def text(self, label: str, limit: int = 60) -> str:
        n = len(self.values)
        value = f"{CSV_STARTS[n % 4]}{HTML_PAYLOADS[(n // 4 + n) % 4]}{TEMPLATE}~{n:02d}"
        if len(value) > limit:
            value = f"{SHORT}~{n:02d}"
        assert len(value) <= limit, (label, value)
        self.values[label] = value
        return value

    def link(self, label: str) -> str:
        value = f"{JAVASCRIPT}//~{len(self.values):02d}"
        self.values[label] = value
        return value


def shown_forms(value: str) -> tuple[str, ...]:
    """How a value looks once autoescaped: as itself, or inside JSON (the audit viewer shows details as JSON)."""
    import json

    inside_json = json.dumps(value)[1:-1]
    return (str(escape(value)), str(escape(inside_json)))


class _Inspector(HTMLParser):
    """Walks the tags of a page and notes anything that would run: handlers, inline scripts, javascript: links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._script_open = False

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...> event handler attribute")
            if (
                name in LINK_ATTRIBUTES
                and value
                and value.strip().lower().replace("\t", "").replace("\n", "").startswith("javascript:")
            ):
                self.problems.append(f"<{tag} {name}={value!r}> javascript: URL")
        if tag == "script":
            if "src" not in names:
                self.problems.append("inline <script> without src")
            self._script_open = True
        if tag == "img" and dict(attrs).get("src") == "x":
            self.problems.append("<img src=x> injected")

    def handle_endtag(self, tag):
        if tag == "script":
            self._script_open = False

    def handle_data(self, data):
        if self._script_open and data.strip():
            self.problems.append(f"script content {data.strip()[:60]!r}")


def html_problems(text: str, *, raw_markers: bool = True) -> list[str]:
    """What in a page shows a payload came through as markup (empty when everything is inert).

    ``raw_markers=False`` for a browser's serialised DOM, which leaves ``<`` unescaped inside attribute values.
    """
    problems = [f"raw {marker!r}" for marker in RAW_MARKERS if raw_markers and marker.lower() in text.lower()]
    if TEMPLATE_RENDERED.search(text):
        problems.append("{{7*7}} rendered as 49")
    inspector = _Inspector()
    inspector.feed(text)
    inspector.close()
    return problems + inspector.problems


def push_keys() -> tuple[str, str]:
    """A browser's push keys as PushSubscription.toJSON() gives them (a real P-256 point, 16-byte secret)."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    encode = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    return encode(key), encode(os.urandom(16))


def seed_hostile_school(session, h: Hostile, password: str, make_imei) -> dict:
    """People, devices, areas, requests, decisions, standing permissions, assets, loans, stock-takes,
    settings, tokens, a passkey and a push subscription, every free-text field hostile. Commits."""
    ids: dict = {}
    with write_intent():
        people = {}
        for key, roles in (
            ("admin", {Role.ADMIN}),
            ("head", {Role.APPROVER}),
            ("deputy", {Role.APPROVER}),
            ("office", {Role.OFFICE}),
            ("staff", set()),
        ):
            people[key] = accounts.create_user(
                session,
                None,
                email=f"{key}@xss.test",
                display_name=h.text(f"{key} display name", 120),
                roles=roles,
                password=password,
            )
        admin, head, office, staff = people["admin"], people["head"], people["office"], people["staff"]
        push.subscribe(
            session,
            staff,
            endpoint="https://fcm.googleapis.com/fcm/send/xss-test",
            p256dh=push_keys()[0],
            auth=push_keys()[1],
            user_agent=h.text("push subscription user agent", 255),
            services=push.PushServices.public(),
        )
        phone = devices.register_device(
            session,
            staff,
            devices.DeviceDetails(
                kind="smartphone",
                make=h.text("device make"),
                model=h.text("device model"),
                description=h.link("device description"),
                serial=h.text("device serial"),
                imei1=make_imei(),
            ),
        )
        lost = devices.register_device(
            session,
            staff,
            devices.DeviceDetails(
                kind="camera", make=h.text("lost device make"), model="X", description=h.text("lost device description", 200)
            ),
        )
        devices.report_lost(
            session, staff, lost, stolen=True, crime_reference=h.text("crime reference"), notes=h.text("loss notes", 500)
        )

        ask_area = areas.create_area(session, admin, name=h.text("area name", 120))
        school_only = areas.create_area(
            session, admin, name=h.text("school-only area name", 120), rule=AreaRule.SCHOOL_DEVICES_ONLY.value
        )

        def ask(label: str):
            return permissions.request_permission(
                session,
                staff,
                ask_area,
                device_key=f"personal-{phone.id}",
                reason="other",
                reason_other=h.text(label, 200),
                duration="one_hour",
            )

        approved = ask("approved request reason")
        permissions.decide(session, head, approved.id, "approve", note=h.text("approval note", 300))
        denied = ask("denied request reason")
        permissions.decide(session, head, denied.id, "deny", note=h.text("denial note", 300))
        pending = ask("pending request reason")  # one waiting request per device and area: asked last
        # A second device for the override: one device, one place would otherwise end the approval above.
        watch = devices.register_device(session, staff, devices.DeviceDetails(kind="smartwatch", make="Acme", model="Watch"))
        emergency = permissions.request_permission(
            session,
            staff,
            ask_area,
            device_key=f"personal-{watch.id}",
            reason="medical",
            duration="one_hour",
            emergency=True,
            emergency_reason=h.text("emergency override reason", 300),
        )
        permissions.review_emergency(session, head, emergency.id, "not_justified", note=h.text("emergency review note", 300))
        today = local_today()
        standing = permissions.grant_standing_permission(
            session,
            head,
            person_id=staff.id,
            area_ids=[school_only.id],
            starts_on=today,
            ends_on=today + timedelta(days=30),
            reason=h.text("standing permission reason", 200),
        )

        location = h.text("asset home location", 80)

        def asset(tag: str, n: int, home: str = location):
            return assets.create_asset(
                session,
                office,
                assets.AssetDetails(
                    tag=tag,
                    name=h.text(f"asset {n} name", 120),
                    kind="camera",
                    make=h.text(f"asset {n} make"),
                    model=h.text(f"asset {n} model"),
                    serial=h.link(f"asset {n} serial"),
                    home_location=home,
                    notes=h.text(f"asset {n} notes", 1000),
                ),
            )

        lent = asset("XSS-001", 1)
        returned = asset("XSS-002", 2, h.text("second home location", 80))
        counted = asset("XSS-003", 3)
        retired = asset("XSS-004", 4)
        assets.retire_asset(session, office, retired, reason=h.text("asset retirement reason", 200))
        # The borrower's terms are kept with each loan and shown on the borrower's terms page.
        settings.set_setting(session, admin, "loans.terms_text", h.text("loan terms setting", 1000))
        open_loan = loans.check_out(
            session,
            office,
            lent.id,
            borrower_id=staff.id,
            due_on=today + timedelta(days=7),
            purpose=h.text("loan purpose", 200),
            condition=h.text("loan condition out", 500),
        )
        loans.check_out(session, office, returned.id, borrower_id=staff.id, due_on=today + timedelta(days=7))
        back = loans.check_in(session, office, returned.id, condition=h.text("check-in condition", 500), damaged=True)

        closed = stocktakes.start_stocktake(session, office, location)
        stocktakes.record_scan(session, office, closed.id, counted.tag, condition=h.text("closed stock-take scan condition", 200))
        stocktakes.record_scan(session, office, closed.id, "XSS-404")
        stocktakes.close_stocktake(session, office, closed.id)
        open_take = stocktakes.start_stocktake(session, office, "")
        stocktakes.record_scan(
            session, office, open_take.id, counted.tag, condition=h.text("open stock-take scan condition", 200)
        )

        settings.set_setting(session, admin, "school.name", h.text("school name setting", 200))
        settings.set_setting(session, admin, "retention.case_hold", h.text("case hold setting", 200))
        api_tokens.create_token(session, staff, h.text("api token name", 80))
        # A passkey needs a real authenticator to register; its name is the only free text, so the row is
        # written as register_passkey would write it (the browser journey covers registration itself).
        session.add(Passkey(user_id=staff.id, credential_id="xss-credential", public_key=b"k", name=h.link("passkey name")[:80]))
        invite = accounts.issue_password_token(session, admin, people["deputy"])
        session.commit()
        ids.update(
            people={key: user.id for key, user in people.items()},
            emails={key: user.email for key, user in people.items()},
            device_id=[phone.id, lost.id],
            area_id=[ask_area.id, school_only.id],
            poster_token=[ask_area.poster_token, school_only.poster_token],
            request_id=[pending.id, approved.id, denied.id],
            standing_id=[standing.id],
            asset_id=[lent.id, returned.id, counted.id, retired.id],
            tag=[lent.tag, returned.tag, counted.tag, retired.tag, "XSS-404"],
            loan_id=[open_loan.id, back.id],
            stocktake_id=[closed.id, open_take.id],
            location=location,
            password_token=[invite],
        )
    return ids
