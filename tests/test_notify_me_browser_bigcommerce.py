"""The notify-me form of the BigCommerce storefront script, in headless Chromium, on a page built
like a Stencil (Cornerstone) product page.

Two loopback servers on different ports, so every call from the store's page to the app is
cross-origin and CORS is exercised for real, preflight included: the app itself (script, badge
API, notify API) and a stand-in storefront serving the product page and the store's own
endpoints the script calls: `/remote/v1/product-attributes/{id}` (which variant the options
pick) and `/customer/current.jwt` (who is signed in). Not with `page.route`: while Playwright
intercepts a page's requests it answers CORS preflights itself, and the app's would go untested.
Screenshots go to /tmp/shots/ (BB_SCREENSHOTS overrides).
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from plugin.extensions import db
from plugin.models import NotifySubscription, Variant
from plugin.services.notify_texts import DEFAULTS, MESSAGES, consent_version
from tests import factories
from tests.bigcommerce_support import CLIENT_SECRET, STORE

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CLIENT_ID = "bc-client-id"  # tests/conftest.py base_env
PRODUCT_ID = 206
# Size option value id -> v3 variant id, as the store's option matrix has it.
SIZES = {"Small": ("1", "509"), "Medium": ("2", "510"), "Large": ("3", "511")}
EN = DEFAULTS["en"]
CONSENT = EN["consent"].replace("{shop}", "Fjord & Fell")
BACKORDER = ("backorder", "Backorder, ships by Tue, December 1, 2026", date(2026, 12, 1))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not at {CHROMIUM}"),
    # The tests' client secret (tests/conftest.py) is shorter than a real one.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

PRODUCT_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Harbour rain jacket - Fjord &amp; Fell</title>
<style>
  body {{ margin: 0; font: 15px/1.6 Karla, "Helvetica Neue", Arial, sans-serif; color: #4f4f4f; }}
  .header {{ text-align: center; padding: 26px 0 18px; border-bottom: 1px solid #e5e5e5; }}
  .header-logo {{ font: 700 26px/1 Montserrat, Arial, sans-serif; color: #222;
                  letter-spacing: .04em; }}
  .navPages {{ margin-top: 14px; font-size: 14px; }}
  .navPages a {{ color: #222; margin: 0 14px; text-decoration: none; }}
  .breadcrumbs {{ max-width: 1100px; margin: 18px auto 0; font-size: 13px; color: #757575; }}
  .productView {{ display: grid; grid-template-columns: 1fr 1fr; gap: 48px; max-width: 1100px;
                  margin: 18px auto 60px; }}
  .productView-image {{ aspect-ratio: 1; background: linear-gradient(150deg, #f2efe9, #e2dccf);
                        position: relative; }}
  .productView-image::after {{ content: ""; position: absolute; left: 28%; right: 28%;
    top: 16%; bottom: 14%; background: #c7a252; border-radius: 30% 30% 6% 6%; }}
  .productView-brand {{ font-size: 14px; color: #757575; margin: 0; }}
  .productView-title {{ font: 700 28px/1.2 Montserrat, Arial, sans-serif; color: #222;
                        margin: 4px 0 10px; }}
  .price {{ font-size: 20px; color: #222; margin-bottom: 18px; }}
  .form-label {{ display: block; font-weight: 700; color: #222; margin-bottom: 6px; }}
  .form-option {{ display: inline-block; padding: 6px 16px; margin: 0 6px 6px 0;
                  border: 1px solid #ccc; cursor: pointer; }}
  .form-radio {{ position: absolute; opacity: 0; }}
  .form-radio:checked + .form-option {{ border-color: #222; box-shadow: inset 0 0 0 1px #222; }}
  .form-field {{ border: 0; padding: 0; margin: 0 0 16px; }}
  .form-input {{ width: 4em; padding: 8px; border: 1px solid #ccc; }}
  .button--primary {{ display: block; width: 100%; margin-top: 12px; padding: 12px;
    background: #444; color: #fff; border: 0; font-weight: 700; letter-spacing: .1em;
    text-transform: uppercase; }}
</style></head><body>
<header class="header"><div class="header-logo">FJORD &amp; FELL</div>
  <nav class="navPages"><a href="#">Shop All</a><a href="#">Outerwear</a><a href="#">About</a>
  </nav></header>
<nav class="breadcrumbs">Home / Outerwear / Harbour rain jacket</nav>
<div class="productView" data-entity-id="{product_id}">
  <div class="productView-image" role="img" aria-label="Harbour rain jacket in ochre"></div>
  <div class="productView-details">
    <p class="productView-brand">Fjord &amp; Fell</p>
    <h1 class="productView-title">Harbour rain jacket</h1>
    <div class="price">$189.00</div>
    <form class="form" method="post" action="/cart.php" enctype="multipart/form-data"
          data-cart-item-add>
      <input type="hidden" name="action" value="add">
      <input type="hidden" name="product_id" value="{product_id}">
      <div data-product-option-change>
        <fieldset class="form-field" data-product-attribute="set-rectangle">
          <legend class="form-label">Size:</legend>
          {sizes}
        </fieldset>
      </div>
      <label class="form-label" for="qty">Quantity:</label>
      <input class="form-input" id="qty" type="number" name="qty[]" value="1" min="1">
      <div id="add-to-cart-wrapper">
        <input id="form-action-addToCart" class="button button--primary" type="submit"
               value="Add to Cart">
      </div>
    </form>
  </div>
</div>
<script async src="{app}/static/badge-widget-bc.js?store={store}&client_id={client_id}"></script>
</body></html>"""


def sizes_html(selected: str) -> str:
    return "\n".join(
        f'<input class="form-radio" type="radio" id="size-{value}" name="attribute[114]"'
        f' value="{value}"{" checked" if name == selected else ""}>'
        f'<label class="form-option" for="size-{value}">{name}</label>'
        for name, (value, _variant) in SIZES.items()
    )


class Storefront(BaseHTTPRequestHandler):
    """The store: the product page, the option matrix, and the shopper's current-customer JWT
    (`customer`, or a 404 for a guest)."""

    app_url = ""
    customer: dict | None = None
    jwt_asks: list[tuple[str, int]] = []

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
        query = parse_qs(url.query)
        if url.path == "/customer/current.jwt":
            self.current_customer(query.get("app_client_id", [""])[0])
            return
        page = PRODUCT_PAGE.format(
            product_id=PRODUCT_ID,
            app=self.app_url,
            store=STORE,
            client_id=CLIENT_ID,
            sizes=sizes_html(query.get("size", ["Small"])[0]),
        )
        self._send(200, page, "text/html; charset=utf-8")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        value = form.get("attribute[114]", [""])[0]
        variant = next((v for val, v in SIZES.values() if val == value), None)
        data = {"v3_variant_id": int(variant) if variant else None, "instock": True}
        self._send(200, json.dumps({"data": data, "content": None}), "application/json")

    def current_customer(self, client_id: str) -> None:
        if self.customer is None or client_id != CLIENT_ID:
            self.jwt_asks.append((client_id, 404))
            self._send(404, "", "text/plain")
            return
        now = int(time.time())
        claims = {
            "iss": "bc/apps",
            "sub": STORE,
            "iat": now,
            "exp": now + 900,
            "jti": "c3f1e7",
            "operation": "current_customer",
            "store_hash": STORE,
            "customer": self.customer,
        }
        self.jwt_asks.append((client_id, 200))
        self._send(200, jwt.encode(claims, CLIENT_SECRET, algorithm="HS256"), "text/plain")


@pytest.fixture
def shop(app):
    store = factories.bigcommerce_store()
    store.name = "Fjord & Fell"
    factories.product(
        store,
        str(PRODUCT_ID),
        "Harbour rain jacket",
        [
            {"platform_id": "509", "title": "Small", "badge": ("in_stock", "In stock", None)},
            {"platform_id": "510", "title": "Medium", "badge": BACKORDER},
            {"platform_id": "511", "title": "Large", "badge": ("out_of_stock", "Sold out", None)},
        ],
    )
    return store


@pytest.fixture
def servers(app, shop):
    """(store URL, app requests, storefront handler): the app and the storefront on their own
    loopback ports; the store's origin is one the shop lists as its storefront."""
    app_requests: list[tuple[str, str, str | None, int]] = []

    def recording(environ, start_response):
        def start(status, headers, exc_info=None):
            app_requests.append(
                (
                    environ["REQUEST_METHOD"],
                    environ["PATH_INFO"],
                    environ.get("HTTP_ORIGIN"),
                    int(status.split()[0]),
                )
            )
            return start_response(status, headers, exc_info)

        return app.wsgi_app(environ, start)

    app_server = make_server("127.0.0.1", 0, recording, threaded=True)
    app_url = f"http://127.0.0.1:{app_server.server_port}"
    handler = type("Handler", (Storefront,), {"app_url": app_url, "jwt_asks": []})
    store_server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    store_url = f"http://127.0.0.1:{store_server.server_address[1]}"
    shop.storefront_origins = [store_url]
    db.session.commit()
    threads = [
        threading.Thread(target=app_server.serve_forever, daemon=True),
        threading.Thread(target=store_server.serve_forever, daemon=True),
    ]
    for thread in threads:
        thread.start()
    yield store_url, app_requests, handler
    app_server.shutdown()
    store_server.shutdown()
    store_server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_store(browser, servers):
    """Opens the product page with `size` chosen, for a guest or a signed-in `customer`;
    returns (page, the store's answers to current.jwt)."""
    store_url, _, handler = servers
    contexts = []
    errors: list[str] = []

    def opener(size: str = "Small", customer: dict | None = None):
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        handler.customer = customer
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{store_url}/outerwear/harbour-rain-jacket/?size={size}")
        return page, handler.jwt_asks

    yield opener
    for context in contexts:
        context.close()
    assert errors == [], "JavaScript errors on the page"


def badge_state(page, state: str) -> None:
    page.wait_for_selector(f"[data-backorder-badge][data-state='{state}']")


def pick(page, size: str) -> None:
    page.locator(f"label.form-option:text-is('{size}')").click()


def subscriptions() -> list[NotifySubscription]:
    db.session.expire_all()
    return list(db.session.scalars(select(NotifySubscription).order_by(NotifySubscription.id)))


def notify_calls(app_requests) -> list[tuple[str, str, str | None, int]]:
    return [r for r in list(app_requests) if r[1].startswith("/storefront/v1/notify")]


def test_a_guest_signs_up_on_a_sold_out_size_across_origins(servers, open_store, shop):
    from playwright.sync_api import expect

    store_url, app_requests, _ = servers
    page, jwt_asks = open_store("Small")
    badge_state(page, "in_stock")
    page.wait_for_load_state("networkidle")
    form = page.locator("[data-backorder-notify]")
    expect(form).to_have_count(0)  # not even loaded for an in-stock size
    assert notify_calls(app_requests) == []

    pick(page, "Large")
    badge_state(page, "out_of_stock")
    expect(form.get_by_role("heading", name=EN["heading"])).to_be_visible()
    # Under the add-to-cart form, not inside it.
    assert page.evaluate(
        "document.querySelector('form[data-cart-item-add] + [data-backorder-notify]') !== null"
    )
    email = form.get_by_label(EN["email_label"])
    email.fill("ada@example.com")
    form.get_by_label(CONSENT).check()
    page.screenshot(path=str(shots() / "notify-bigcommerce.png"), full_page=True)
    form.get_by_role("button", name=EN["button"]).click()

    status = form.get_by_role("status")
    expect(status).to_have_text(MESSAGES["en"]["subscribed"])
    expect(status).to_be_focused()
    page.screenshot(path=str(shots() / "notify-bigcommerce-done.png"), full_page=True)

    [signed_up] = subscriptions()
    variant = db.session.get(Variant, signed_up.variant_id)
    assert (signed_up.shop_id, variant.platform_id) == (shop.id, "511")
    assert (signed_up.email, signed_up.locale, signed_up.status) == (
        "ada@example.com",
        "en",
        "active",
    )
    assert signed_up.consent_text == CONSENT
    assert signed_up.consent_version == consent_version(CONSENT)
    assert signed_up.form == "bigcommerce_script"
    assert signed_up.page_url == page.url
    assert signed_up.customer_id is None  # a guest: the store answered 404
    assert jwt_asks == [(CLIENT_ID, 404)]
    # Every call came from the store's origin: the form's words, the preflight, the sign-up.
    calls = notify_calls(app_requests)
    assert [(m, s) for m, _p, _o, s in calls] == [("GET", 200), ("OPTIONS", 204), ("POST", 201)]
    assert {origin for _m, _p, origin, _s in calls} == {store_url}


def test_the_form_is_hidden_in_stock_and_comes_back_on_the_sold_out_size(open_store, servers):
    from playwright.sync_api import expect

    _, app_requests, _ = servers
    page, _ = open_store("Large")
    badge_state(page, "out_of_stock")
    form = page.locator("[data-backorder-notify]")
    email = form.get_by_label(EN["email_label"])
    expect(email).to_be_visible()

    pick(page, "Small")
    badge_state(page, "in_stock")
    expect(form).to_be_hidden()
    pick(page, "Medium")  # on backorder: buyable now; the shop offers the form when sold out
    badge_state(page, "backorder")
    expect(form).to_be_hidden()
    pick(page, "Large")
    badge_state(page, "out_of_stock")
    expect(email).to_be_visible()
    assert [r[0] for r in notify_calls(app_requests)] == ["GET"]
    assert subscriptions() == []


def test_a_bad_address_shows_its_error_next_to_the_field(open_store, servers):
    from playwright.sync_api import expect

    page, _ = open_store("Large")
    form = page.locator("[data-backorder-notify]")
    email = form.get_by_label(EN["email_label"])
    email.fill("ada@example")
    form.get_by_label(CONSENT).check()
    form.get_by_role("button", name=EN["button"]).click()

    error = page.locator("#" + email.get_attribute("aria-describedby"))
    expect(error).to_have_text(MESSAGES["en"]["invalid_email"])
    expect(error).to_have_attribute("role", "alert")
    expect(email).to_be_focused()
    expect(email).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=str(shots() / "notify-bigcommerce-refused.png"), full_page=True)
    assert subscriptions() == []


def test_a_signed_in_shopper_skips_the_confirmation_mail_with_the_stores_token(open_store, shop):
    """Double opt-in is on; the store's JWT proves the address is the shopper's own."""
    from playwright.sync_api import expect

    shop.settings.notify_double_opt_in = True
    db.session.commit()
    customer = {"id": 4242, "email": "ada@example.com", "group_id": "0"}
    page, jwt_asks = open_store("Large", customer=customer)
    form = page.locator("[data-backorder-notify]")
    form.get_by_label(EN["email_label"]).fill("ada@example.com")
    form.get_by_label(CONSENT).check()
    form.get_by_role("button", name=EN["button"]).click()
    expect(form.get_by_role("status")).to_have_text(MESSAGES["en"]["subscribed"])
    [signed_up] = subscriptions()
    assert (signed_up.customer_id, signed_up.status) == ("4242", "active")
    assert jwt_asks == [(CLIENT_ID, 200)]

    # A guest on the same store must confirm the address first.
    guest, _ = open_store("Large")
    form = guest.locator("[data-backorder-notify]")
    form.get_by_label(EN["email_label"]).fill("grace@example.com")
    form.get_by_label(CONSENT).check()
    form.get_by_role("button", name=EN["button"]).click()
    expect(form.get_by_role("status")).to_have_text(MESSAGES["en"]["pending_confirmation"])
    assert [(s.email, s.status, s.customer_id) for s in subscriptions()] == [
        ("ada@example.com", "active", "4242"),
        ("grace@example.com", "pending", None),
    ]


def test_a_store_origin_the_shop_does_not_list_gets_no_form(open_store, servers, shop):
    from playwright.sync_api import expect

    _, app_requests, _ = servers
    shop.storefront_origins = ["https://fjord-and-fell.example"]
    db.session.commit()
    page, _ = open_store("Large")
    badge_state(page, "out_of_stock")
    page.wait_for_load_state("networkidle")
    # The app answered, without letting this origin read it: the page shows no form.
    assert [(r[0], r[3]) for r in notify_calls(app_requests)] == [("GET", 200)]
    expect(page.locator("[data-backorder-notify]")).to_be_hidden()


def shots() -> Path:
    folder = Path(os.environ.get("BB_SCREENSHOTS") or "/tmp/shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
