"""The BigCommerce storefront script in headless Chromium, on a page built like a Stencil
(Cornerstone) product page: the badge follows the shopper's option choices.

Two loopback servers: the real app (badge API and the script itself) and a stand-in storefront
that serves the product page and answers `/remote/v1/product-attributes/{id}` the way a Stencil
store does, with `data.v3_variant_id` for the chosen options.
"""

from __future__ import annotations

import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from werkzeug.serving import make_server

from tests import factories
from tests.bigcommerce_support import STORE

# The badge the shared renderer draws inside the placeholder, anew on every render.
BADGE_PILL = "[data-backorder-badge] .bb-badge"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# (size value id, colour value id) -> v3 variant id, as the store's option matrix has it.
MATRIX = {("1", "3"): 509, ("2", "3"): 510, ("1", "4"): 511, ("2", "4"): 512}

PRODUCT_PAGE = """<!doctype html><html><head><title>Tee</title></head><body>
<div class="productView">
  <h1 class="productView-title">Tee</h1>
  <form class="form" method="post" action="/cart.php" enctype="multipart/form-data"
        data-cart-item-add>
    <input type="hidden" name="action" value="add">
    <input type="hidden" name="product_id" value="{product_id}">
    <div class="form-field" data-product-attribute="set-select">
      <label class="form-label" for="attribute_select_114">Size</label>
      <select class="form-select" id="attribute_select_114" name="attribute[114]">
        <option value="">Choose Options</option>
        <option data-product-attribute-value="1" value="1" selected>Small</option>
        <option data-product-attribute-value="2" value="2">Large</option>
      </select>
    </div>
    <div class="form-field" data-product-attribute="set-radio">
      <input class="form-radio" type="radio" id="c3" name="attribute[115]" value="3" checked>
      <label data-product-attribute-value="3" for="c3">Red</label>
      <input class="form-radio" type="radio" id="c4" name="attribute[115]" value="4">
      <label data-product-attribute-value="4" for="c4">Blue</label>
    </div>
    <input class="form-input" type="number" name="qty[]" value="1">
    <input id="form-action-addToCart" class="button" type="submit" value="Add to Cart">
  </form>
</div>
<script async src="{app}/static/badge-widget-bc.js?store={store}"></script>
</body></html>"""

ABOUT_PAGE = """<!doctype html><html><body><h1>About us</h1>
<script async src="{app}/static/badge-widget-bc.js?store={store}"></script></body></html>"""


class Storefront(BaseHTTPRequestHandler):
    app_url = ""
    option_posts: list = []

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: str, content_type: str) -> None:
        raw = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        if self.path.startswith("/tee/"):
            page = PRODUCT_PAGE.format(product_id=206, app=self.app_url, store=STORE)
        elif self.path.startswith("/sweater/"):
            page = PRODUCT_PAGE.format(product_id=167, app=self.app_url, store=STORE)
        else:
            page = ABOUT_PAGE.format(app=self.app_url, store=STORE)
        self._send(200, page, "text/html; charset=utf-8")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        self.option_posts.append((self.path, form, self.headers.get("stencil-options")))
        product_id = int(self.path.rsplit("/", 1)[1])
        key = (form.get("attribute[114]", [""])[0], form.get("attribute[115]", [""])[0])
        variant_id = MATRIX.get(key) if product_id == 206 else {("1", "3"): 301}.get(key, 302)
        data = {"v3_variant_id": variant_id, "instock": True, "purchasable": True}
        self._send(200, json.dumps({"data": data, "content": None}), "application/json")


BACKORDER = ("backorder", "Backorder, ships by Tue, December 1, 2026", date(2026, 12, 1))


def seed_badges():
    shop = factories.bigcommerce_store()
    factories.product(
        shop,
        "206",
        "Tee",
        [
            {"platform_id": "509", "badge": ("in_stock", "In stock", None)},
            {"platform_id": "510", "badge": BACKORDER},
            {"platform_id": "511", "badge": ("out_of_stock", "Out of stock", None)},
            {"platform_id": "512", "badge": ("in_stock", "In stock", None)},
        ],
    )
    # Tracked at product level: one stock item, one badge, whichever option is chosen.
    factories.product(
        shop,
        "167",
        "Sweater",
        [{"platform_id": "301", "inventory_item_id": "product:167", "badge": BACKORDER}],
    )


@pytest.fixture
def servers(app):
    seed_badges()
    badge_requests: list[str] = []

    def counting(environ, start_response):
        if environ["PATH_INFO"].startswith("/storefront/v1/badges"):
            badge_requests.append(environ.get("QUERY_STRING", ""))
        return app.wsgi_app(environ, start_response)

    app_server = make_server("127.0.0.1", 0, counting, threaded=True)
    app_url = f"http://127.0.0.1:{app_server.server_port}"
    handler = type("Handler", (Storefront,), {"app_url": app_url, "option_posts": []})
    store_server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threads = [
        threading.Thread(target=app_server.serve_forever, daemon=True),
        threading.Thread(target=store_server.serve_forever, daemon=True),
    ]
    for thread in threads:
        thread.start()
    yield f"http://127.0.0.1:{store_server.server_address[1]}", handler, badge_requests
    app_server.shutdown()
    store_server.shutdown()
    store_server.server_close()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser.new_page()
        browser.close()


def badge_text(page) -> str:
    page.wait_for_function(
        "() => { const el = document.querySelector('[data-backorder-badge]');"
        " return el && !el.hidden && el.textContent.length > 0; }",
        timeout=10_000,
    )
    return page.inner_text("[data-backorder-badge]")


def wait_for_state(page, state: str) -> str:
    page.wait_for_selector(f"[data-backorder-badge][data-state='{state}']", timeout=10_000)
    return page.inner_text("[data-backorder-badge]")


def test_badge_follows_the_shoppers_option_choices(servers, page):
    store_url, handler, badge_requests = servers
    page.goto(f"{store_url}/tee/")
    assert badge_text(page) == "In stock"  # Small / Red = variant 509

    page.select_option("select[name='attribute[114]']", "2")  # Large / Red = 510
    text = wait_for_state(page, "backorder")
    # Drawn by the shared renderer: the date said once, as a machine-readable <time>.
    assert text == "Backorder, ships by Tue, December 1, 2026"
    assert page.get_attribute("[data-backorder-badge] time", "datetime") == "2026-12-01"

    page.check("#c4")  # Large / Blue = 512
    assert wait_for_state(page, "in_stock") == "In stock"
    page.select_option("select[name='attribute[114]']", "1")  # Small / Blue = 511
    assert wait_for_state(page, "out_of_stock") == "Out of stock"

    # The badge API is asked once per page; option changes ask the storefront, as Stencil does.
    assert badge_requests == [f"shop={STORE}&product=206"]
    path, form, stencil_options = handler.option_posts[-1]
    assert path == "/remote/v1/product-attributes/206"
    assert form["attribute[114]"] == ["1"] and form["attribute[115]"] == ["4"]
    assert form["product_id"] == ["206"] and stencil_options == "{}"


def test_product_level_tracking_shows_the_one_badge_for_every_option(servers, page):
    store_url, _, _ = servers
    page.goto(f"{store_url}/sweater/")
    assert "Backorder, ships by" in badge_text(page)
    # Every render draws a new badge element: keep this one to see the next render happen.
    page.evaluate("pill => { window.shownBadge = document.querySelector(pill); }", BADGE_PILL)
    page.select_option("select[name='attribute[114]']", "2")  # another variant, same stock
    page.wait_for_function(
        "pill => { const now = document.querySelector(pill);"
        " return now && now !== window.shownBadge; }",
        arg=BADGE_PILL,
        timeout=10_000,
    )
    assert "Backorder, ships by" in page.inner_text("[data-backorder-badge]")


def test_pages_without_a_product_form_are_left_alone(servers, page):
    store_url, _, badge_requests = servers
    page.goto(f"{store_url}/about/")
    page.wait_for_load_state("networkidle")
    assert page.query_selector("[data-backorder-badge]") is None
    assert badge_requests == []
