"""J1 in a real browser at 360x740: register a phone from the phone, report it lost; the PWA shell."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import sign_in_page
from tests.factories import PASSWORD, make_imei, make_user

WRONG_CHECK_DIGIT = "35 209900 176148 2"


def _right_imei() -> str:
    return make_imei(424242)


def test_register_a_phone_then_report_it_lost(live_server, phone):
    with live_server.app_context():
        email = make_user(name="Mr B Clarke").email
    imei = _right_imei()

    phone.goto("/devices/new")
    expect(phone).to_have_url(re.compile(r"/sign-in\?next="))
    sign_in_page(phone, email, PASSWORD)
    expect(phone.get_by_role("heading", name="Add a device")).to_be_visible()
    expect(phone.get_by_text("*#06#").first).to_be_visible()

    phone.get_by_label("Make").fill("Apple")
    phone.get_by_label("Model").fill("iPhone 13")
    phone.get_by_label("IMEI", exact=True).fill(WRONG_CHECK_DIGIT)
    phone.get_by_role("button", name="Register device").click()

    alert = phone.get_by_role("alert")
    expect(alert).to_contain_text("There is a problem")
    expect(phone.locator("#imei1-error")).to_contain_text("last digit does not match")
    expect(phone.get_by_label("IMEI", exact=True)).to_have_value(WRONG_CHECK_DIGIT)
    expect(phone.get_by_label("Make")).to_have_value("Apple")
    expect(phone.get_by_label("Model")).to_have_value("iPhone 13")

    phone.get_by_label("IMEI", exact=True).fill(f"{imei[:2]} {imei[2:8]} {imei[8:14]} {imei[14]}")
    phone.get_by_role("button", name="Register device").click()

    expect(phone.get_by_role("heading", name="My devices")).to_be_visible()
    expect(phone.get_by_role("status")).to_contain_text("iPhone 13 is registered")
    card = phone.get_by_role("list", name="Registered devices").get_by_role("listitem").first
    expect(card).to_contain_text("•••••••••••" + imei[-4:])
    expect(card.get_by_text(imei, exact=True)).to_be_hidden()
    card.get_by_text("Show IMEI").click()
    expect(card.get_by_text(imei, exact=True)).to_be_visible()

    card.get_by_role("link", name="Report Apple iPhone 13 lost or stolen").click()
    phone.get_by_label("It has been stolen").check()
    phone.get_by_label("Police crime reference (if you have one)").fill("CR/12345/26")
    phone.get_by_role("button", name="Report it").click()

    expect(phone.get_by_role("heading", name="Apple iPhone 13 is reported stolen")).to_be_visible()
    expect(phone.locator(".imei-big")).to_have_text(re.compile(imei))
    expect(phone.get_by_text("block the IMEI")).to_be_visible()
    expect(phone.get_by_text("CR/12345/26")).to_be_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways at 360px ({width}px wide)"


def test_service_worker_registers_and_offline_page_shows(live_server, phone):
    with live_server.app_context():
        email = make_user().email
    sign_in_page(phone, email, PASSWORD)
    phone.goto("/devices")
    phone.wait_for_function("document.documentElement.dataset.swRegistered === 'true'")
    phone.evaluate("navigator.serviceWorker.ready.then(() => true)")
    phone.reload()
    phone.wait_for_function("navigator.serviceWorker.controller !== null")
    cached = phone.evaluate("caches.keys()")
    assert any(name.startswith("lanyard-shell-") for name in cached)
    cached_urls = phone.evaluate(
        "caches.keys().then(ks => caches.open(ks[0])).then(c => c.keys()).then(rs => rs.map(r => new URL(r.url).pathname))"
    )
    assert "/offline" in cached_urls
    assert "/devices" not in cached_urls, "a personal page must never be cached"
    offline_copy = phone.evaluate(
        "caches.keys().then(ks => caches.open(ks[0])).then(c => c.match('/offline')).then(r => r.text())"
    )
    assert "Sign out" not in offline_copy, "the cached offline page must be the visitor's, not the signed-in person's"

    live_server.stop()
    phone.goto("/devices")
    expect(phone.get_by_role("heading", name="You are offline")).to_be_visible()
