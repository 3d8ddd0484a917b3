"""A stand-in BigCommerce storefront for the storefront script in headless Chromium.

Two loopback servers: the real app (badge API and the script itself) and a storefront that
serves pages built like a Stencil (Cornerstone) product page and answers
`/remote/v1/product-attributes/{id}` the way a Stencil store does, with `data.v3_variant_id` for
the chosen options. Cornerstone writes the storefront's language as `<html lang="{{locale_name}}">`;
the stand-in writes the one a page is asked for with (`?lang=fr`).
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from werkzeug.serving import make_server

from tests.bigcommerce_support import STORE

# The badge the shared renderer draws inside the placeholder, anew on every render.
BADGE_PILL = "[data-backorder-badge] .bb-badge"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# (size value id, colour value id) -> v3 variant id, as the store's option matrix has it.
MATRIX = {("1", "3"): 509, ("2", "3"): 510, ("1", "4"): 511, ("2", "4"): 512}
# The products the stand-in store has a page for: path -> product id.
PRODUCT_PATHS = {"/tee/": 206, "/sweater/": 167}

PRODUCT_PAGE = """<!doctype html><html{lang}><head><title>Tee</title></head><body>
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

ABOUT_PAGE = """<!doctype html><html{lang}><body><h1>About us</h1>
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
        url = urlsplit(self.path)
        lang = parse_qs(url.query).get("lang", [""])[0]
        fields = {
            "app": self.app_url,
            "store": STORE,
            "lang": f' lang="{html.escape(lang)}"' if lang else "",
        }
        product_id = PRODUCT_PATHS.get(url.path)
        if product_id is not None:
            page = PRODUCT_PAGE.format(product_id=product_id, **fields)
        else:
            page = ABOUT_PAGE.format(**fields)
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


@contextmanager
def storefront_servers(app) -> Iterator[tuple[str, type[Storefront], list[str]]]:
    """The app and the stand-in store on loopback: (store URL, the store's handler class with
    the option posts it received, the query strings the badge API was asked with)."""
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
    try:
        yield f"http://127.0.0.1:{store_server.server_address[1]}", handler, badge_requests
    finally:
        app_server.shutdown()
        store_server.shutdown()
        store_server.server_close()


@contextmanager
def chromium_page(**context):
    """A page in headless Chromium (Debian's), 1280 wide unless told."""
    from playwright.sync_api import sync_playwright

    context.setdefault("viewport", {"width": 1280, "height": 800})
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(**context)
        finally:
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
