"""The embedded page in a real browser with Shopify's CDN unreachable: it still saves."""

from __future__ import annotations

import shutil
import threading

import pytest
from flask import current_app
from sqlalchemy import select
from werkzeug.serving import make_server

from plugin.models import MailTemplate, Shop
from tests.factories import shopify_shop
from tests.shopify_install_helpers import session_token

pytestmark = pytest.mark.browser
SHOP = "cool-shop.myshopify.com"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def live_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def page():
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Chromium is not installed")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        blocked: list[str] = []

        def block(route):
            blocked.append(route.request.url)
            route.abort()

        page.route("https://cdn.shopify.com/**", block)
        page.blocked = blocked
        yield page
        browser.close()


def _stored_label() -> str:
    with current_app.extensions["db_sessionmaker"]() as other:
        return other.scalars(select(Shop).where(Shop.domain == SHOP)).one().settings.label_in_stock


def test_settings_save_without_app_bridge(app, live_url, page):
    shopify_shop(SHOP)
    page.goto(f"{live_url}/shopify/app/settings?shop={SHOP}&id_token={session_token(SHOP)}")
    # Shopify's CDN is unreachable here: neither App Bridge nor Polaris loads.
    assert sorted(page.blocked) == [
        "https://cdn.shopify.com/shopifycloud/app-bridge.js",
        "https://cdn.shopify.com/shopifycloud/polaris-1.js",
    ]

    page.fill("#color_in_stock", "green")
    page.click("button[type=submit]")
    page.wait_for_selector("#save-status.error")
    assert "fix the 1 field(s)" in page.text_content("#save-status")
    assert page.get_attribute("#color_in_stock", "aria-invalid") == "true"
    assert "Use a colour like" in page.text_content("#settings-form")

    page.fill("#color_in_stock", "#1a7f37")
    page.fill("#label_in_stock", "Ready to ship")
    page.click("button[type=submit]")
    page.wait_for_selector("#save-status.ok")
    assert "Settings saved" in page.text_content("#save-status")
    assert page.get_attribute("#color_in_stock", "aria-invalid") is None
    assert _stored_label() == "Ready to ship"


def test_email_wording_preview_refusal_save_and_restore(app, live_url, page):
    shopify_shop(SHOP)
    page.goto(f"{live_url}/shopify/app/emails?shop={SHOP}&id_token={session_token(SHOP)}")
    page.select_option("#mt-kind", "eta_change")
    page.wait_for_function(
        "document.getElementById('mt-variables').textContent.includes('old_eta')"
    )

    page.fill("#mt-body", "{{ ''.__class__ }}")
    page.click("#mt-save")
    page.wait_for_selector("#mt-status.error")
    assert page.get_attribute("#mt-body", "aria-invalid") == "true"
    assert "underscore" in page.text_content("#mt-body-error")

    page.fill("#mt-subject", "New date for {{ order_name }}")
    page.fill("#mt-body", "Hello {{ customer_name }}, your item now ships {{ new_eta }}.")
    page.click("#mt-preview-button")
    page.wait_for_selector("#mt-preview:not([hidden])")
    assert page.text_content("#mt-preview-subject").startswith("New date for #")
    assert page.get_attribute("#mt-body", "aria-invalid") is None
    frame = page.frame_locator("#mt-preview iframe")
    frame.get_by_text("your item now ships").wait_for()  # the HTML part, in the sandboxed frame
    assert "your item now ships" in page.text_content("#mt-preview-text")

    page.click("#mt-save")
    page.wait_for_selector("#mt-status.ok")
    assert page.is_visible("#mt-restore")
    with current_app.extensions["db_sessionmaker"]() as other:
        assert other.scalars(select(MailTemplate.subject)).all() == [
            "New date for {{ order_name }}"
        ]

    page.click("#mt-restore")
    page.wait_for_selector("#mt-restore[hidden]", state="attached")
    assert "default wording" in page.text_content("#mt-state")
    with current_app.extensions["db_sessionmaker"]() as other:
        assert other.scalars(select(MailTemplate)).all() == []
