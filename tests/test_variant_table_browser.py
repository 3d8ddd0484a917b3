"""The Variants page of each shell in Chromium, 1280 wide, with a screenshot of each
(/tmp/shots/variants-*.png): search, a row saved by its own button, a refusal next to the field.
Shopify's CDN is unreachable here: the section still works on the page's session token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import select
from werkzeug.serving import make_server

from plugin.models import Variant
from plugin.services import bigcommerce_session, sandbox_store
from tests import factories
from tests.shopify_install_helpers import session_token
from tests.test_variant_table import catalogue

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/shots")
SHOP = "variants-browser.myshopify.com"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not at {CHROMIUM}"),
]


@pytest.fixture
def live_url(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="variants-live", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def page(monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr("plugin.jobs.schedule_push", lambda shop_id: None)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.route("https://cdn.shopify.com/**", lambda route: route.abort())
        yield tab
        browser.close()


def stored_limit(sku: str) -> int | None:
    with current_app.extensions["db_sessionmaker"]() as other:
        return other.scalars(select(Variant).where(Variant.sku == sku)).one().backorder_limit


def shot(page, name: str, locator=None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = SHOTS / f"variants-{name}.png"
    (locator or page).screenshot(path=str(target), **({} if locator else {"full_page": True}))


def test_sandbox_variants_page(app, live_url, page):
    from playwright.sync_api import expect

    catalogue(sandbox_store.ensure_shop(factories.db.session))
    page.goto(f"{live_url}/sandbox/")
    page.get_by_role("link", name="Variants", exact=True).click()
    expect(page.get_by_role("heading", name="Variants 1\u20135 of 5")).to_be_visible()
    page.get_by_label("Search title, option or SKU").fill("tee")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Variants 1\u20133 of 3 (filtered)")).to_be_visible()
    page.get_by_label("Backorder limit for Organic Tee · Small").fill("2")
    page.get_by_role("button", name="Save Organic Tee · Small").click()
    expect(page.get_by_role("status").first).to_contain_text("Saved 1 variant(s)")
    assert stored_limit("TEE-S") == 2
    # A refusal is shown next to its field, by keyboard alone: type, then Enter submits.
    lead = page.get_by_label("Lead time for Organic Tee · Large")
    lead.fill("-3")
    lead.press("Enter")
    expect(page.locator("#variant-table .field-error").first).to_contain_text(
        "Lead time must be between 0 and"
    )
    expect(lead).to_have_attribute("aria-invalid", "true")
    shot(page, "sandbox")


def test_bigcommerce_variants_page(app, live_url, page):
    from playwright.sync_api import expect

    store = factories.bigcommerce_store("vtbrowse1", owner=7)
    catalogue(store)
    token = bigcommerce_session.issue(app.config["SECRET_KEY"], "vtbrowse1", "7")
    page.goto(f"{live_url}/bigcommerce/app/vtbrowse1?token={token}")
    page.get_by_role("link", name="Variants", exact=True).click()
    expect(page.get_by_role("heading", name="Variants 1\u20135 of 5")).to_be_visible()
    page.get_by_label("Limit reached", exact=True).check()
    page.get_by_label("Customers waiting", exact=True).check()
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="No variant matches (filtered)")).to_be_visible()
    page.get_by_role("link", name="Clear the filter").click()
    page.get_by_label("Backorder limit for Enamel Mug · Blue").fill("8")
    page.get_by_role("button", name="Save this page").click()
    expect(page.get_by_role("status").first).to_contain_text("Saved 1 variant(s)")
    assert stored_limit("MUG-BLUE") == 8
    shot(page, "bigcommerce")


def test_shopify_variants_section(app, live_url, page):
    from playwright.sync_api import expect

    catalogue(factories.shopify_shop(SHOP))
    page.goto(f"{live_url}/shopify/app/variants?shop={SHOP}&id_token={session_token(SHOP)}")
    section = page.locator("#variants")
    expect(section.locator("#vt-status")).to_contain_text("Variants 1\u20135 of 5")
    expect(section.get_by_role("row").filter(has_text="TEE-M")).to_contain_text("3 of 5")
    section.get_by_label("Backorder limit for Organic Tee · Small").fill("4")
    section.get_by_role("button", name="Save Organic Tee · Small").click()
    expect(section.locator("#vt-status")).to_contain_text("Saved 1 variant(s)")
    assert stored_limit("TEE-S") == 4
    eta = section.get_by_label("Lead time for Enamel Mug · Red")
    eta.fill("-3")
    eta.press("Enter")
    expect(section.locator(".field-error")).to_contain_text("Lead time must be between 0 and")
    section.scroll_into_view_if_needed()
    shot(page, "shopify", section)


def test_a_variant_is_edited_and_saved_by_keyboard_alone(app, live_url, page):
    """No pointer at all: Tab to the field, type, Tab to the row's Save button, press Enter."""
    from playwright.sync_api import expect

    catalogue(sandbox_store.ensure_shop(factories.db.session))
    page.goto(f"{live_url}/sandbox/variants")
    target = page.get_by_label("Backorder limit for Organic Tee · Small")

    def tab_until(locator, most: int = 120) -> None:
        for _ in range(most):
            if locator.evaluate("el => el === document.activeElement"):
                return
            page.keyboard.press("Tab")
        raise AssertionError("never reached by Tab")

    tab_until(target)
    page.keyboard.type("4")
    tab_until(page.get_by_role("button", name="Save Organic Tee · Small"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text("Saved 1 variant(s)")
    assert stored_limit("TEE-S") == 4
