"""The sandbox's demo product page and settings page, as a shopper and a merchant see them in
real headless Chromium: the badge and its ETA, live updates, refused settings, and escaping.

The app (PostgreSQL, jobs inline) is served by a real HTTP server on 127.0.0.1 in a background
thread; Chromium talks to it over the loopback like any browser. Set BB_SCREENSHOTS=<dir> to
keep a screenshot of each page the tests check.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from plugin.extensions import db
from plugin.services import sandbox_store
from plugin.services.shop_time import format_eta, shop_today
from tests.waiting import wait_until

CHROMIUM = Path("/usr/bin/chromium")
XSS = "<img src=x onerror=alert(1)>"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"headless Chromium not installed at {CHROMIUM} (apt-get install chromium)",
    ),
]


@dataclass
class LiveServer:
    url: str
    # (method, path, If-None-Match sent, status) of each request the server answered.
    requests: list[tuple[str, str, str | None, int]] = field(default_factory=list)

    def badge_api_calls(self) -> list[tuple[str | None, int]]:
        return [
            (etag, status)
            for _method, path, etag, status in list(self.requests)
            if path == "/storefront/v1/badges"
        ]


@pytest.fixture
def live_server(app) -> Iterator[LiveServer]:
    """The test's app behind a real threaded HTTP server; each request gets its own context."""
    server_info = LiveServer(url="")

    def recording_app(environ, start_response):
        def recording_start(status, headers, exc_info=None):
            server_info.requests.append(
                (
                    environ["REQUEST_METHOD"],
                    environ["PATH_INFO"],
                    environ.get("HTTP_IF_NONE_MATCH"),
                    int(status.split()[0]),
                )
            )
            return start_response(status, headers, exc_info)

        return app(environ, recording_start)

    server = make_server("127.0.0.1", 0, recording_app, threaded=True)
    server_info.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield server_info
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """A browser context and its first page, with every dialog and script error it raised."""

    context: object
    page: object
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.set_default_timeout(5000)
    page = context.new_page()
    opened = Tab(context, page)

    def on_dialog(dialog):
        opened.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    yield opened
    context.close()
    assert opened.errors == [], "JavaScript errors on the page"


def screenshot(page, name: str) -> None:
    folder = os.environ.get("BB_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def seed_tee():
    """The demo product, created in the sandbox store and delivered as its signed webhook."""
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    product, hooks = sandbox_store.seed_demo(db.session, shop)
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    variants = {v.title: v.id for v in product.variants}
    return shop, product.id, variants


def eta_in(days: int):
    return shop_today("UTC") + timedelta(days=days)


def test_product_page_shows_each_variants_badge_and_eta(live_server, tab):
    from playwright.sync_api import expect

    _shop, product_id, _variants = seed_tee()
    page = tab.page
    page.goto(f"{live_server.url}/sandbox/products/{product_id}")

    badge = page.locator("#backorder-badge")
    expect(page.get_by_role("heading", name="Organic cotton tee")).to_be_visible()
    expect(badge.locator(".bb-badge")).to_have_text("In stock")
    expect(badge).to_have_attribute("data-state", "in_stock")
    expect(badge.locator("time")).to_have_count(0)

    eta = eta_in(14)
    page.get_by_label("Option").select_option(label="Medium")
    expect(badge.locator(".bb-badge")).to_have_text(f"Backorder, ships by {format_eta(eta)}")
    expect(badge).to_have_attribute("data-state", "backorder")
    expect(badge.locator("time")).to_have_attribute("datetime", eta.isoformat())
    expect(badge.locator("time")).to_contain_text(format_eta(eta))
    # The date is said once, inside the label, and the merchant's colour marks the badge.
    expect(badge).to_have_text(f"Backorder, ships by {format_eta(eta)}")
    expect(badge.locator(".bb-badge")).to_have_css("border-left-color", "rgb(154, 103, 0)")
    screenshot(page, "product-page-backorder")

    page.get_by_label("Option").select_option(label="Large")
    expect(badge.locator(".bb-badge")).to_have_text("Out of stock")
    expect(badge).to_have_attribute("data-state", "out_of_stock")
    expect(badge.locator("time")).to_have_count(0)

    page.get_by_label("Option").select_option(label="Small")
    expect(badge.locator(".bb-badge")).to_have_text("In stock")


def test_product_page_follows_inventory_changes_without_reload(live_server, tab):
    from playwright.sync_api import expect

    _shop, product_id, variants = seed_tee()
    page = tab.page
    page.goto(f"{live_server.url}/sandbox/products/{product_id}")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    badge = page.locator("#backorder-badge .bb-badge")
    expect(badge).to_have_text("In stock")

    # While nothing changes, the widget revalidates with its ETag and the API answers 304.
    wait_until(
        lambda: any(etag and status == 304 for etag, status in live_server.badge_api_calls()),
        timeout=6,
        what="a 304 revalidation of the badge API",
        interval=0,
        # Let the page run (its timers fire) between checks.
        before_each=lambda: page.wait_for_timeout(100),
    )

    # The merchant sets Small to 0 in the store admin, in another tab.
    admin = tab.context.new_page()
    admin.goto(f"{live_server.url}/sandbox/")
    row = admin.locator(f"#variant-{variants['Small']}")
    row.get_by_label("Available stock of Small").fill("0")
    row.get_by_role("button", name="Save").click()
    expect(admin.get_by_role("status")).to_have_text("Saved Small: 0 available.")
    admin.close()

    eta = eta_in(14)
    expect(badge).to_have_text(f"Backorder, ships by {format_eta(eta)}", timeout=8000)
    expect(page.locator("#backorder-badge time")).to_have_attribute("datetime", eta.isoformat())
    assert page.evaluate("window.loadedOnce") is True, "the page reloaded"


def test_settings_refuse_bad_input_next_to_the_field_and_keep_what_was_saved(live_server, tab):
    from playwright.sync_api import expect

    _shop, product_id, _variants = seed_tee()
    page = tab.page
    settings_url = f"{live_server.url}/sandbox/settings"
    page.goto(settings_url)
    expect(page.locator("#label_backorder")).to_have_value("Backorder, ships by {eta}")

    # A merchant types a fractional lead time, a colour name and a label without {eta}.
    page.locator("#default_lead_days").fill("2.5")
    page.locator("#color_backorder").fill("red")
    page.locator("#label_backorder").fill("Coming soon")
    page.get_by_role("button", name="Save settings").click()

    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    expect(page.get_by_role("alert")).to_contain_text("3 field(s)")
    for field_id, message in [
        ("default_lead_days", "Lead time must be a whole number."),
        ("color_backorder", "Use a colour like #1a7f37."),
        ("label_backorder", "Include {eta} where the ship-by date should appear."),
    ]:
        field_input = page.locator(f"#{field_id}")
        expect(page.locator(f"#{field_id}-error")).to_have_text(message)
        expect(page.locator(f"#{field_id}-error")).to_be_visible()
        expect(field_input).to_have_attribute("aria-invalid", "true")
        expect(field_input).to_have_attribute("aria-describedby", f"{field_id}-error")
        # The message sits right after its own field.
        expect(page.locator(f"#{field_id} + .field-error")).to_have_attribute(
            "id", f"{field_id}-error"
        )
    # What was typed is still there to correct, and the valid fields are not flagged.
    expect(page.locator("#default_lead_days")).to_have_value("2.5")
    expect(page.locator("#color_backorder")).to_have_value("red")
    expect(page.locator("#label_backorder")).to_have_value("Coming soon")
    expect(page.locator("#label_in_stock")).not_to_have_attribute("aria-invalid", "true")
    screenshot(page, "settings-refused")

    # Loading the page again shows the settings saved before, untouched.
    page.goto(settings_url)
    expect(page.locator(".field-error")).to_have_count(0)
    expect(page.locator("#default_lead_days")).to_have_value("14")
    expect(page.locator("#color_backorder")).to_have_value("#9a6700")
    expect(page.locator("#label_backorder")).to_have_value("Backorder, ships by {eta}")

    # A valid save is confirmed, and shoppers see the new label and lead time.
    page.locator("#label_backorder").fill("Pre-order now: ships {eta}")
    page.locator("#default_lead_days").fill("10")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved.")
    expect(page.locator("#label_backorder")).to_have_value("Pre-order now: ships {eta}")
    expect(page.locator("#default_lead_days")).to_have_value("10")

    page.goto(f"{live_server.url}/sandbox/products/{product_id}")
    page.get_by_label("Option").select_option(label="Medium")
    eta = eta_in(10)
    badge = page.locator("#backorder-badge")
    expect(badge.locator(".bb-badge")).to_have_text(f"Pre-order now: ships {format_eta(eta)}")
    expect(badge.locator("time")).to_have_attribute("datetime", eta.isoformat())


def test_markup_in_titles_and_labels_is_shown_as_text(live_server, tab):
    from playwright.sync_api import expect

    page = tab.page
    # The merchant adds a product whose title and variant title are markup, in the store admin.
    page.goto(f"{live_server.url}/sandbox/")
    page.locator("#title").fill(XSS)
    page.locator("#variants").fill(f"{XSS}, XSS-1, 5, deny\nPlain, XSS-2, 0, continue")
    page.get_by_role("button", name="Add product").click()
    expect(page.get_by_role("status")).to_have_text(f"Added {XSS}.")
    expect(page.get_by_role("heading", name=XSS)).to_be_visible()
    assert page.evaluate("document.images.length") == 0

    # ... and uses markup in the in-stock and backorder labels.
    page.goto(f"{live_server.url}/sandbox/settings")
    page.locator("#label_in_stock").fill(XSS)
    page.locator("#label_backorder").fill(f"{XSS} {{eta}}")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved.")
    expect(page.locator("#label_in_stock")).to_have_value(XSS)
    assert page.evaluate("document.images.length") == 0
    # The Variants page shows the titles and the badge labels as text too.
    page.get_by_role("link", name="Variants", exact=True).click()
    expect(page.get_by_role("rowheader", name=f"{XSS} · {XSS}")).to_be_visible()
    expect(page.locator("#variant-table tbody tr").first).to_contain_text(f"In stock {XSS}")
    assert page.evaluate("document.images.length") == 0

    page.goto(f"{live_server.url}/sandbox/")
    page.get_by_role("link", name=f"View product page of {XSS}").click()
    expect(page).to_have_title(f"{XSS} · Sandbox store")
    expect(page.locator("h1")).to_have_text(XSS)
    expect(page.get_by_label("Option").locator("option").first).to_have_text(XSS)
    badge = page.locator("#backorder-badge .bb-badge")
    expect(badge).to_have_text(XSS)
    page.get_by_label("Option").select_option(label="Plain")
    expect(badge).to_have_text(f"{XSS} {format_eta(eta_in(14))}")

    assert page.evaluate("document.images.length") == 0, "an <img> was injected"
    page.wait_for_timeout(200)  # an injected onerror would have fired by now
    assert tab.dialogs == []


def test_admin_page_shows_stock_and_who_waits_and_cancels_an_order(live_server, tab):
    from playwright.sync_api import expect

    _shop, _product_id, variants = seed_tee()
    page = tab.page
    page.goto(f"{live_server.url}/sandbox/")
    medium = page.locator(f"#variant-{variants['Medium']}")

    def figures(on_hand: str, reserved: str, owed: str) -> None:
        expect(medium.locator("td.on-hand")).to_have_text(on_hand)
        expect(medium.locator("td.reserved")).to_have_text(reserved)
        expect(medium.locator("td.owed")).to_have_text(owed)

    figures("0", "0", "0")
    # A customer orders two Medium tees, which the store does not have.
    orders = page.get_by_role("group", name="Create an order")
    orders.get_by_label("Variant").select_option(label="Medium")
    orders.get_by_label("Quantity").fill("2")
    orders.get_by_label("Customer email").fill("ada@example.com")
    orders.get_by_role("button", name="Create order").click()
    expect(page.get_by_role("status")).to_have_text("Order #1001 placed.")
    figures("0", "0", "2")
    queue = page.get_by_role("table", name="Customers waiting for Medium, oldest order first")
    expect(queue.get_by_role("row")).to_have_count(2)  # the header and one customer
    waiting = queue.get_by_role("row").nth(1)
    expect(waiting.get_by_role("rowheader")).to_have_text("#1001")
    expect(waiting.get_by_role("cell")).to_have_text(
        ["1", "ada@example.com", "2", "0", re.compile(r"\d+ \w{3} \d{4}, \d\d:\d\d"), ""]
    )
    order = page.get_by_role("article", name="Order #1001")
    expect(order.get_by_text("Backorder: 2 waiting")).to_be_visible()

    # One unit comes in: it is reserved for her, one is still owed.
    medium.get_by_label("Units of Medium received").fill("1")
    medium.get_by_role("button", name="Receive").click()
    expect(page.get_by_role("status")).to_have_text("Received 1 unit of Medium; 1 on hand.")
    figures("1", "1", "1")
    screenshot(page, "sandbox-admin-waiting")

    order.get_by_role("button", name="Cancel order #1001").click()
    expect(page.get_by_role("status")).to_have_text("Order #1001 cancelled; 2 units back in stock.")
    figures("1", "0", "0")
    expect(queue).to_have_count(0)
    expect(order.get_by_text("Cancelled", exact=True)).to_be_visible()
    expect(order.get_by_role("button", name="Cancel order #1001")).to_have_count(0)
    screenshot(page, "sandbox-admin-cancelled")
