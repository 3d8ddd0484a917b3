"""The notify-me form of the Shopify theme block and app embed, in headless Chromium.

The block is rendered with python-liquid (as tests/test_shopify_theme_extension_render.py
does) into a page built like a Dawn product page, served at the shop's own address, with the
shop metafield the app pushes (`$app:backorder.storefront`: the form's words per language). What
the storefront would send to Shopify's app proxy (`/apps/backorder-badges/...`) is forwarded to
the app's `/proxy/shopify/...` with the query Shopify adds and signs, as Shopify's proxy does;
no other request leaves the page, and nothing reaches the app before the shopper signs up.
Screenshots go to /tmp/shots/ (BB_SCREENSHOTS overrides).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from liquid import CachingFileSystemLoader, Environment
from sqlalchemy import select

from plugin.extensions import db
from plugin.models import NotifySubscription, Shop, Variant
from plugin.services.badge_labels import storefront_config
from plugin.services.notify_texts import DEFAULTS, MESSAGES, consent_version
from tests import factories
from tests.test_shopify_theme_extension_render import EXTENSION, _json
from webhooks.shopify_app_proxy import sign

CHROMIUM = Path("/usr/bin/chromium")
SHOP = factories.SHOPIFY_SHOP
STORE = f"https://{SHOP}"
CDN = "https://cdn.shopify.test/extensions/backorder-badge/assets/"
CLIENT_SECRET = "shopify-client-secret"  # tests/conftest.py base_env
PROXY_PREFIX = "/apps/backorder-badges"
SHOPPER_IP = "203.0.113.77"
# Platform variant ids, one per badge.
SMALL, MEDIUM, LARGE = "44001", "44002", "44003"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not at {CHROMIUM}"),
]


def shots() -> Path:
    folder = Path(os.environ.get("BB_SCREENSHOTS") or "/tmp/shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- the block, rendered as Shopify would ----------------------------------------------------


def schema_of(path: Path) -> dict:
    text = path.read_text()
    return json.loads(text.split("{% schema %}")[1].split("{% endschema %}")[0])


def translator(locale: str):
    """Shopify's `t` filter: the shopper's locale file, else the default one."""
    files = [EXTENSION / "locales" / f"{locale}.json", EXTENSION / "locales" / "en.default.json"]
    tables = [json.loads(f.read_text()) for f in files if f.is_file()]

    def t(key: str) -> str:
        for table in tables:
            node = table
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, str):
                return node
        return f"translation missing: {key}"

    return t


def pushed_config() -> dict | None:
    """What the app writes to the shop metafield for the test's shop (None: not installed)."""
    db.session.expire_all()
    shop = db.session.scalar(select(Shop).where(Shop.domain == SHOP))
    return storefront_config(shop) if shop else None


def render_block(
    name: str, variants: list[dict], selected: int, locale: str = "en", pushed: bool = True
) -> str:
    """blocks/<name>.liquid without its schema, with the schema's default settings, and the
    shop metafield as the app pushed it (unless `pushed` is False: not written yet)."""
    path = EXTENSION / "blocks" / f"{name}.liquid"
    source = re.sub(r"{%\s*schema\s*%}.*?{%\s*endschema\s*%}", "", path.read_text(), flags=re.S)
    env = Environment(loader=CachingFileSystemLoader(EXTENSION / "snippets", ext=".liquid"))
    env.filters["json"] = _json
    env.filters["t"] = translator(locale)
    env.filters["asset_url"] = lambda asset: CDN + asset
    settings = {s["id"]: s.get("default") for s in schema_of(path)["settings"] if "id" in s}
    product = {
        "id": 8123456789,
        "variants": variants,
        "selected_or_first_available_variant": variants[selected],
    }
    block = {"id": f"{name}-AbC123", "shopify_attributes": "", "settings": settings}
    request = {"page_type": "product", "locale": {"iso_code": locale}}
    shop = {"metafields": {"$app:backorder": {}}}
    if pushed and (config := pushed_config()) is not None:
        shop["metafields"]["$app:backorder"]["storefront"] = {"value": config}
    return env.from_string(source).render(product=product, block=block, request=request, shop=shop)


def variant(variant_id: str, state: str, label: str) -> dict:
    badge = {"state": {"value": state}, "label": {"value": label}}
    return {"id": int(variant_id), "metafields": {"$app:backorder": badge}}


VARIANTS = [
    variant(SMALL, "in_stock", "In stock"),
    variant(MEDIUM, "backorder", "Backorder, ships by Thu, December 24, 2026"),
    variant(LARGE, "out_of_stock", "Out of stock"),
]
SIZES = [("Small", SMALL), ("Medium", MEDIUM), ("Large", LARGE)]


def product_page(block_html: str, selected: int, embed: bool = False) -> str:
    """A product page built like Dawn's: radio pills publish the variant into the product
    form's `id` input (with a bubbling change) and `?variant=` (replaceState)."""
    pills = "\n".join(
        f'<input type="radio" id="size-{n}" name="Size" value="{title}" data-variant="{vid}"'
        f'{" checked" if n == selected else ""}><label for="size-{n}">{title}</label>'
        for n, (title, vid) in enumerate(SIZES)
    )
    app_block = "" if embed else f'<div class="shopify-app-block">{block_html}</div>'
    app_embed = f'<div class="shopify-app-embed">{block_html}</div>' if embed else ""
    sold_out = SIZES[selected][1] == LARGE
    buy, sold_out = ("Sold out", " disabled") if sold_out else ("Add to cart", "")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Merino crew sweater - Fjord &amp; Fell</title>
<link rel="stylesheet" href="{CDN}backorder-badge.css">
<style>
  :root {{ --color-foreground: 18, 18, 18; --color-button: 30, 58, 52;
           --color-button-text: 255, 255, 255; }}
  body {{ margin: 0; font: 16px/1.55 "Helvetica Neue", Arial, sans-serif; color: #121212; }}
  .announcement {{ background: #1e3a34; color: #fff; text-align: center; font-size: 13px;
                   padding: 8px; letter-spacing: .06em; }}
  header {{ display: flex; justify-content: space-between; align-items: center;
            padding: 18px 48px; border-bottom: 1px solid #e6e6e6; }}
  header .logo {{ font-size: 22px; letter-spacing: .18em; font-weight: 600; }}
  header nav a {{ margin-left: 24px; color: #121212; text-decoration: none; font-size: 14px; }}
  main {{ padding: 40px 48px; max-width: 1200px; margin: 0 auto; }}
  .shopify-section {{ display: grid; grid-template-columns: 1.1fr 1fr; gap: 56px; }}
  .media {{ aspect-ratio: 4 / 5; border-radius: 4px;
            background: radial-gradient(circle at 50% 38%, #c9d6cf 0 28%, transparent 29%),
                        linear-gradient(160deg, #eef2ef, #d9e2dc); position: relative; }}
  .media::after {{ content: ""; position: absolute; left: 27%; right: 27%; top: 30%;
                   bottom: 18%; background: #7c9a8c; border-radius: 38% 38% 10% 10%; }}
  .vendor {{ text-transform: uppercase; letter-spacing: .14em; font-size: 12px; color: #666; }}
  h1 {{ font-size: 36px; font-weight: 400; margin: 6px 0 10px; }}
  .price {{ font-size: 19px; margin-bottom: 22px; }}
  fieldset {{ border: 0; padding: 0; margin: 0 0 18px; }}
  legend {{ font-size: 14px; margin-bottom: 8px; }}
  fieldset input {{ position: absolute; opacity: 0; }}
  fieldset label {{ display: inline-block; padding: 8px 20px; margin: 0 6px 6px 0;
                    border: 1px solid #121212; border-radius: 40px; font-size: 14px; }}
  fieldset input:checked + label {{ background: #121212; color: #fff; }}
  .buy {{ width: 100%; padding: 15px; font-size: 15px; border: 1px solid #121212;
          background: #fff; letter-spacing: .06em; }}
  .buy:disabled {{ opacity: .45; }}
  .description {{ font-size: 15px; color: #444; margin-top: 24px; }}
</style></head><body>
<div class="announcement">FREE SHIPPING ON ORDERS OVER €80</div>
<header><span class="logo">FJORD &amp; FELL</span>
  <nav><a href="#">Shop</a><a href="#">Journal</a><a href="#">Cart (0)</a></nav></header>
<main id="MainContent"><section class="shopify-section">
  <div class="media" role="img" aria-label="Merino crew sweater in sage"></div>
  <div class="product-info">
    <p class="vendor">Fjord &amp; Fell</p>
    <h1>Merino crew sweater</h1>
    <p class="price">€129,00</p>
    <variant-selects><fieldset><legend>Size</legend>{pills}</fieldset></variant-selects>
    <product-form><form method="post" action="/cart/add" class="product-form">
      <input type="hidden" name="id" value="{SIZES[selected][1]}">
      <button type="submit" name="add" class="buy"{sold_out}>{buy}</button>
    </form></product-form>
    {app_block}
    <p class="description">Knitted in Portugal from soft, traceable merino. Regular fit.</p>
  </div>
</section></main>
{app_embed}
<script>
  document.querySelector('variant-selects').addEventListener('change', function (e) {{
    var id = e.target.dataset.variant;
    var button = document.querySelector('button[name="add"]');
    button.disabled = id === '{LARGE}';
    button.textContent = button.disabled ? 'Sold out' : 'Add to cart';
    var input = document.querySelector('form[action="/cart/add"] [name="id"]');
    input.value = id;
    input.dispatchEvent(new Event('change', {{ bubbles: true }}));
    history.replaceState({{}}, '', '?variant=' + id);
  }});
</script>
<script src="{CDN}backorder-badge.js" defer></script>
</body></html>"""


# --- the storefront and Shopify's app proxy --------------------------------------------------


class Storefront:
    """Answers every request of the page: the page, the extension's assets, and the app proxy
    (forwarded to the app with Shopify's signed query). Anything else is refused."""

    def __init__(self, client, page_html: str):
        self.client = client
        self.page_html = page_html
        self.proxied: list[tuple[str, str]] = []  # (method, path?query) the page sent

    def handle(self, route) -> None:
        request = route.request
        url = urlsplit(request.url)
        if request.url.startswith(CDN):
            asset = EXTENSION / "assets" / url.path.rsplit("/", 1)[1]
            kind = "text/css" if asset.suffix == ".css" else "text/javascript"
            route.fulfill(status=200, body=asset.read_text(), content_type=kind)
        elif url.netloc == SHOP and url.path.startswith(PROXY_PREFIX + "/"):
            self.proxied.append((request.method, f"{url.path}?{url.query}"))
            self.forward(route, url)
        elif url.netloc == SHOP and url.path.startswith("/products/"):
            route.fulfill(status=200, body=self.page_html, content_type="text/html")
        else:
            route.fulfill(status=404, body="not found")

    def forward(self, route, url) -> None:
        request = route.request
        pairs = parse_qsl(url.query, keep_blank_values=True)
        pairs += [
            ("shop", SHOP),
            ("logged_in_customer_id", ""),
            ("path_prefix", PROXY_PREFIX),
            ("timestamp", str(int(time.time()))),
        ]
        pairs.append(("signature", sign(pairs, CLIENT_SECRET)))
        headers = {
            "User-Agent": request.headers.get("user-agent", ""),
            "X-Forwarded-For": SHOPPER_IP,
            "X-Forwarded-Host": SHOP,
        }
        if request.headers.get("content-type"):
            headers["Content-Type"] = request.headers["content-type"]
        answer = self.client.open(
            "/proxy/shopify" + url.path[len(PROXY_PREFIX) :],
            method=request.method,
            query_string=urlencode(pairs),
            data=request.post_data_buffer or b"",
            headers=headers,
        )
        route.fulfill(
            status=answer.status_code,
            body=answer.get_data(),
            content_type=answer.content_type,
        )


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def shop(app):
    made = factories.shopify_shop()
    made.name = "Fjord & Fell"
    factories.product(
        made,
        "8123456789",
        "Merino crew sweater",
        [
            {"platform_id": SMALL, "title": "Small", "badge": ("in_stock", "In stock", None)},
            {"platform_id": MEDIUM, "title": "Medium", "badge": ("backorder", "Backorder", None)},
            {"platform_id": LARGE, "title": "Large", "badge": ("out_of_stock", "Sold out", None)},
        ],
    )
    return made


@pytest.fixture
def open_page(browser, client):
    """Opens the product page with the given block HTML; yields (page, storefront)."""
    contexts = []
    errors: list[str] = []

    def opener(block_html: str, selected: int, embed: bool = False):
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.set_default_timeout(8000)
        contexts.append(context)
        storefront = Storefront(client, product_page(block_html, selected, embed))
        context.route("**/*", storefront.handle)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{STORE}/products/merino-crew-sweater?variant={SIZES[selected][1]}")
        return page, storefront

    yield opener
    for context in contexts:
        context.close()
    assert errors == [], "JavaScript errors on the page"


def subscriptions() -> list[NotifySubscription]:
    db.session.expire_all()
    return list(db.session.scalars(select(NotifySubscription).order_by(NotifySubscription.id)))


def pick(page, size: str) -> None:
    page.locator(f"variant-selects label:text-is('{size}')").click()


# --- the tests -------------------------------------------------------------------------------


def test_a_shopper_signs_up_on_a_sold_out_size(shop, open_page):
    from playwright.sync_api import expect

    page, storefront = open_page(render_block("backorder_badge", VARIANTS, 0), selected=0)
    form = page.locator("[data-backorder-notify]")
    expect(page.locator("[data-backorder-badge]")).to_have_attribute("data-state", "in_stock")
    expect(form).to_be_hidden()
    page.wait_for_load_state("networkidle")
    assert storefront.proxied == [], "an in-stock view asked the app"

    pick(page, "Large")
    en = DEFAULTS["en"]
    consent = en["consent"].replace("{shop}", "Fjord & Fell")
    expect(form.get_by_role("heading", name=en["heading"])).to_be_visible()
    expect(form.get_by_text(en["intro"])).to_be_visible()
    # The honeypot is there for bots only: out of sight, out of the tab order, unannounced.
    trap = form.locator("input[name=website]")
    expect(trap).to_have_attribute("tabindex", "-1")
    expect(trap).to_have_attribute("autocomplete", "off")
    expect(trap).to_have_attribute("aria-hidden", "true")
    assert trap.bounding_box()["x"] < -1000

    form.get_by_label(en["email_label"]).fill("Ada@Example.com")
    form.get_by_label(consent).check()
    page.screenshot(path=str(shots() / "notify-shopify.png"), full_page=True)
    assert storefront.proxied == [], "the form asked the app before the shopper signed up"
    form.get_by_role("button", name=en["button"]).click()

    status = form.get_by_role("status")
    expect(status).to_have_text(MESSAGES["en"]["subscribed"])
    expect(status).to_be_focused()
    expect(form.locator("form")).to_be_hidden()
    page.screenshot(path=str(shots() / "notify-shopify-done.png"), full_page=True)

    [signed_up] = subscriptions()
    variant = db.session.get(Variant, signed_up.variant_id)
    assert (signed_up.shop_id, variant.platform_id) == (shop.id, LARGE)
    assert signed_up.email == "ada@example.com"
    assert signed_up.locale == "en"
    assert signed_up.status == "active"
    assert signed_up.consent_text == consent
    assert signed_up.consent_version == consent_version(consent)
    assert signed_up.form == "shopify_block"
    assert signed_up.page_url == f"{STORE}/products/merino-crew-sweater?variant={LARGE}"
    assert signed_up.ip_truncated == "203.0.113.0/24"
    assert "Chrome" in (signed_up.user_agent or "")
    # The sign-up was the only request to the app, through the proxy path the block names.
    assert [(m, p.split("?")[0]) for m, p in storefront.proxied] == [
        ("POST", f"{PROXY_PREFIX}/notify")
    ]


def test_the_form_follows_the_size_and_hides_when_it_is_in_stock(shop, open_page):
    from playwright.sync_api import expect

    page, storefront = open_page(render_block("backorder_badge", VARIANTS, 2), selected=2)
    form = page.locator("[data-backorder-notify]")
    email = form.get_by_label("Email address")
    expect(email).to_be_visible()
    email.fill("grace@example.com")

    pick(page, "Small")
    expect(page.locator("[data-backorder-badge]")).to_have_attribute("data-state", "in_stock")
    expect(form).to_be_hidden()
    # On backorder the shopper can buy now: the shop offers the form on sold-out sizes only.
    pick(page, "Medium")
    expect(page.locator("[data-backorder-badge]")).to_have_attribute("data-state", "backorder")
    expect(form).to_be_hidden()

    pick(page, "Large")
    expect(email).to_be_visible()
    expect(email).to_have_value("grace@example.com")  # what was typed is still there
    assert page.url.endswith(f"?variant={LARGE}")
    # The words were in the page: no request to the app, however often the size changed.
    page.wait_for_load_state("networkidle")
    assert storefront.proxied == []
    assert subscriptions() == []


def test_on_backorder_too_when_the_shop_offers_it(shop, open_page):
    from playwright.sync_api import expect

    shop.settings.notify_on_backorder = True
    db.session.commit()
    page, storefront = open_page(render_block("backorder_badge", VARIANTS, 1), selected=1)
    form = page.locator("[data-backorder-notify]")
    expect(form.get_by_label("Email address")).to_be_visible()
    pick(page, "Small")
    expect(form).to_be_hidden()
    page.wait_for_load_state("networkidle")
    assert storefront.proxied == []


def test_a_backordered_size_shows_the_form_in_the_shoppers_language_without_asking_the_app(
    shop, open_page
):
    from playwright.sync_api import expect

    shop.published_locales = ["en", "de"]
    shop.settings.notify_on_backorder = True
    shop.settings.notify_texts = {"de": {"heading": "Sagen Sie mir Bescheid"}}
    db.session.commit()
    page, storefront = open_page(
        render_block("backorder_badge", VARIANTS, 1, locale="de-AT"), selected=1
    )
    form = page.locator("[data-backorder-notify]")
    de = DEFAULTS["de"]
    expect(form.get_by_role("heading", name="Sagen Sie mir Bescheid")).to_be_visible()
    expect(form.get_by_label(de["email_label"])).to_be_visible()
    expect(form.get_by_role("button", name=de["button"])).to_be_visible()
    assert form.get_attribute("lang") == "de"
    page.wait_for_load_state("networkidle")
    assert storefront.proxied == [], "a backordered variant asked the app for the form"


def test_before_the_app_pushed_the_metafield_the_form_stays_hidden(shop, open_page):
    from playwright.sync_api import expect

    page, storefront = open_page(
        render_block("backorder_badge", VARIANTS, 2, pushed=False), selected=2
    )
    expect(page.locator("[data-backorder-badge]")).to_have_attribute("data-state", "out_of_stock")
    page.wait_for_load_state("networkidle")
    expect(page.locator("[data-backorder-notify]")).to_be_hidden()
    assert storefront.proxied == []


def test_a_bad_address_is_refused_next_to_the_field_in_the_shoppers_language(shop, open_page):
    from playwright.sync_api import expect

    shop.published_locales = ["en", "fr"]
    db.session.commit()
    page, _ = open_page(render_block("backorder_badge", VARIANTS, 2, locale="fr"), selected=2)
    fr = DEFAULTS["fr"]
    form = page.locator("[data-backorder-notify]")
    email = form.get_by_label(fr["email_label"])
    expect(form.get_by_role("heading", name=fr["heading"])).to_be_visible()

    # Without ticking the consent box: said next to the box, focus on it.
    email.fill("ada@example.com")
    form.get_by_role("button", name=fr["button"]).click()
    consent_box = form.get_by_role("checkbox")
    expect(consent_box).to_be_focused()
    consent_error = page.locator("#" + consent_box.get_attribute("aria-describedby"))
    expect(consent_error).to_have_text("Cochez la case pour accepter l'e-mail.")

    consent_box.check()
    email.fill("ada@example")  # no dot in the domain: the app refuses it
    form.get_by_role("button", name=fr["button"]).click()
    error = page.locator("#" + email.get_attribute("aria-describedby"))
    expect(error).to_have_text(MESSAGES["fr"]["invalid_email"])
    expect(error).to_have_attribute("role", "alert")
    expect(consent_error).to_have_text("")
    expect(email).to_be_focused()
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_value("ada@example")
    expect(form.locator("[role=status]")).to_have_text("")
    page.screenshot(path=str(shots() / "notify-shopify-refused.png"), full_page=True)
    assert subscriptions() == []


def test_the_app_embed_puts_its_form_after_the_buy_form_and_signs_up(shop, open_page):
    from playwright.sync_api import expect

    page, _ = open_page(render_block("backorder_embed", VARIANTS, 2), selected=2, embed=True)
    form = page.locator("[data-backorder-notify]")
    expect(form.get_by_label("Email address")).to_be_visible()
    # Never inside the cart form (forms do not nest): right after the theme's product form.
    assert page.evaluate(
        "document.querySelector('product-form + [data-backorder-notify]') !== null"
        " && document.querySelector('form[action=\"/cart/add\"] [data-backorder-notify]') === null"
    )
    form.get_by_label("Email address").fill("lin@example.com")
    form.get_by_role("checkbox").check()
    form.get_by_role("button", name="Notify me").click()
    expect(form.get_by_role("status")).to_have_text(MESSAGES["en"]["subscribed"])
    [signed_up] = subscriptions()
    assert (signed_up.email, signed_up.form) == ("lin@example.com", "shopify_embed")
