"""The notify-me form on the sandbox's demo product page, in headless Chromium against the live
app (PostgreSQL, jobs inline), as tests/test_browser_sandbox.py serves it.

The demo tee has one size of each badge: Small in stock, Medium on backorder (selling past
zero), Large sold out. Screenshots go to /tmp/shots/ (BB_SCREENSHOTS overrides).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from plugin.extensions import db
from plugin.models import NotifySubscription, Variant
from plugin.services.notify_texts import DEFAULTS, MESSAGES, consent_version
from tests.test_browser_sandbox import (  # noqa: F401 - fixtures
    CHROMIUM,
    browser,
    live_server,
    seed_tee,
    tab,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not at {CHROMIUM}"),
]
EN = DEFAULTS["en"]
CONSENT = EN["consent"].replace("{shop}", "Sandbox demo store")


def shots() -> Path:
    folder = Path(os.environ.get("BB_SCREENSHOTS") or "/tmp/shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def subscriptions() -> list[NotifySubscription]:
    db.session.expire_all()
    return list(db.session.scalars(select(NotifySubscription).order_by(NotifySubscription.id)))


def form_calls(server) -> list[tuple[str, str, int]]:
    return [
        (method, path, status)
        for method, path, _etag, status in list(server.requests)
        if path.startswith("/storefront/v1/notify")
    ]


def open_tee(server, opened):
    from playwright.sync_api import expect

    _shop, product_id, variants = seed_tee()
    page = opened.page
    page.goto(f"{server.url}/sandbox/products/{product_id}")
    expect(page.locator("#backorder-badge")).to_have_attribute("data-state", "in_stock")
    return page, page.locator("#backorder-notify"), variants


def test_a_shopper_signs_up_on_the_sold_out_size(live_server, tab):  # noqa: F811
    from playwright.sync_api import expect

    page, form, variants = open_tee(live_server, tab)
    expect(form).to_be_hidden()
    page.wait_for_load_state("networkidle")
    assert form_calls(live_server) == [], "an in-stock view asked for the form"

    page.get_by_label("Option").select_option(label="Large")
    expect(form.get_by_role("heading", name=EN["heading"])).to_be_visible()
    email = form.get_by_label(EN["email_label"])
    email.fill("ada@example.com")
    form.get_by_label(CONSENT).check()
    expect(form.locator("input[name=website]")).to_have_attribute("aria-hidden", "true")
    page.screenshot(path=str(shots() / "notify-sandbox.png"), full_page=True)
    form.get_by_role("button", name=EN["button"]).click()

    status = form.get_by_role("status")
    expect(status).to_have_text(MESSAGES["en"]["subscribed"])
    expect(status).to_be_focused()
    expect(email).to_be_hidden()
    page.screenshot(path=str(shots() / "notify-sandbox-done.png"), full_page=True)

    [signed_up] = subscriptions()
    variant = db.session.get(Variant, signed_up.variant_id)
    assert variant.platform_id == str(variants["Large"])
    assert (signed_up.email, signed_up.locale, signed_up.status) == (
        "ada@example.com",
        "en",
        "active",
    )
    assert signed_up.consent_text == CONSENT
    assert signed_up.consent_version == consent_version(CONSENT)
    assert signed_up.form == "sandbox"
    assert signed_up.page_url == page.url
    assert signed_up.ip_truncated == "127.0.0.0/24"
    assert [(m, s) for m, _p, s in form_calls(live_server)] == [("GET", 200), ("POST", 201)]

    # Back on the same size later in the visit, the shopper sees they are on the list.
    page.get_by_label("Option").select_option(label="Small")
    expect(form).to_be_hidden()
    page.get_by_label("Option").select_option(label="Large")
    expect(status).to_have_text(MESSAGES["en"]["subscribed"])


def test_the_form_is_hidden_in_stock_and_comes_back_on_the_sold_out_size(live_server, tab):  # noqa: F811
    from playwright.sync_api import expect

    page, form, _variants = open_tee(live_server, tab)
    option = page.get_by_label("Option")
    email = form.get_by_label(EN["email_label"])

    option.select_option(label="Large")
    expect(email).to_be_visible()
    option.select_option(label="Small")
    expect(page.locator("#backorder-badge")).to_have_attribute("data-state", "in_stock")
    expect(form).to_be_hidden()
    # Medium can be bought now (on backorder): the demo store offers the form when sold out.
    option.select_option(label="Medium")
    expect(page.locator("#backorder-badge")).to_have_attribute("data-state", "backorder")
    expect(form).to_be_hidden()
    option.select_option(label="Large")
    expect(page.locator("#backorder-badge")).to_have_attribute("data-state", "out_of_stock")
    expect(email).to_be_visible()
    assert [m for m, _p, _s in form_calls(live_server)] == ["GET"]
    assert subscriptions() == []


def test_a_bad_address_shows_its_error_next_to_the_field(live_server, tab):  # noqa: F811
    from playwright.sync_api import expect

    page, form, _variants = open_tee(live_server, tab)
    page.get_by_label("Option").select_option(label="Large")
    email = form.get_by_label(EN["email_label"])
    form.get_by_label(CONSENT).check()

    # Nothing typed: said before anything is sent.
    form.get_by_role("button", name=EN["button"]).click()
    error = page.locator("#" + email.get_attribute("aria-describedby"))
    expect(error).to_have_text(MESSAGES["en"]["invalid_email"])
    expect(email).to_be_focused()

    email.fill("ada@@example.com")
    form.get_by_role("button", name=EN["button"]).click()
    expect(error).to_have_attribute("role", "alert")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_be_focused()
    expect(error).to_have_text(MESSAGES["en"]["invalid_email"])
    assert ("POST", "/storefront/v1/notify", 422) in form_calls(live_server)
    page.screenshot(path=str(shots() / "notify-sandbox-refused.png"), full_page=True)
    assert subscriptions() == []

    # Corrected, it goes through and the error is gone.
    email.fill("ada@example.com")
    form.get_by_role("button", name=EN["button"]).click()
    expect(form.get_by_role("status")).to_have_text(MESSAGES["en"]["subscribed"])
    expect(error).to_have_text("")
    assert [s.email for s in subscriptions()] == ["ada@example.com"]
