"""The BigCommerce storefront script on a Cornerstone-like theme, in headless Chromium: it follows
the theme's own signals (BCData at load, `onProductOptionsChanged` after), keyboard changes made
with jQuery's trigger('change') included, sends no request of its own where the theme has the
answer, gives every product form its own badge (quick view), lists backordered cart lines, and
shifts nothing when the badge appears. The stand-in store: tests/cornerstone_support.py.
Screenshots go to /tmp/shots/ (BB_SCREENSHOTS overrides).
"""

from __future__ import annotations

import gzip
import os
from datetime import date
from pathlib import Path

import pytest

from plugin.extensions import db
from tests import factories
from tests.bigcommerce_storefront_support import chromium_page
from tests.bigcommerce_support import STORE
from tests.cornerstone_support import CSRF_TOKEN, cart_line, cornerstone_servers

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("BB_SCREENSHOTS", "/tmp/shots"))
CHRISTMAS = date(2026, 12, 24)
BACKORDER = ("backorder", "Backorder, ships by Thu, December 24, 2026", CHRISTMAS)
IN_STOCK = ("in_stock", "In stock", None)
SOLD_OUT = ("out_of_stock", "Out of stock", None)
PAGE_BADGE = ".productView:not(.productView--quickView) [data-backorder-badge]"
MODAL_BADGE = "#modal [data-backorder-badge]"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not at {CHROMIUM}"),
]


def seed() -> None:
    shop = factories.bigcommerce_store()
    shop.locale = "en"
    shop.published_locales = ["en", "de"]
    db.session.commit()
    factories.product(
        shop,
        "206",
        "Tee",
        [
            {"platform_id": "509", "badge": IN_STOCK},  # Small / Red
            {"platform_id": "510", "badge": BACKORDER},  # Large / Red
            {"platform_id": "511", "badge": SOLD_OUT},  # Small / Blue
            {"platform_id": "512", "badge": IN_STOCK},  # Large / Blue
        ],
    )
    factories.product(
        shop,
        "167",
        "Sweater",
        [{"platform_id": "301", "badge": SOLD_OUT}, {"platform_id": "302", "badge": IN_STOCK}],
    )
    db.session.commit()


@pytest.fixture
def store(app):
    seed()
    with cornerstone_servers(app) as running:
        yield running


@pytest.fixture
def page():
    with chromium_page() as opened:
        yield opened


def state_of(page, badge: str, state: str | None) -> str:
    """Waits until the badge shows `state` (None: hidden), then returns its text."""
    if state is None:
        page.wait_for_function(
            "sel => { const el = document.querySelector(sel);"
            " return el && el.hidden && !el.dataset.state; }",
            arg=badge,
            timeout=10_000,
        )
        return ""
    page.wait_for_selector(f"{badge}[data-state='{state}']", timeout=10_000)
    return page.inner_text(badge)


def theme_posts(handler) -> list:
    return [post for post in handler.option_posts if post[2].get("x-test-caller") == "theme"]


def own_posts(handler) -> list:
    return [post for post in handler.option_posts if post[2].get("x-test-caller") != "theme"]


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_pills_dropdowns_keyboard_and_an_unavailable_combination(store, page):
    store_url, handler, badge_requests = store
    page.goto(f"{store_url}/tee/")
    # The starting variant comes from BCData: no request of the script's own.
    assert state_of(page, PAGE_BADGE, "in_stock") == "In stock"  # Small / Red = 509

    page.select_option("#attribute_select_114", "2")  # dropdown: Large / Red = 510
    assert state_of(page, PAGE_BADGE, "backorder") == BACKORDER[1]
    shot(page, "cornerstone-product.png")
    page.click("label[for=attribute_rectangle_115_4]")  # pill: Large / Blue = 512
    state_of(page, PAGE_BADGE, "in_stock")

    # Keyboard: Cornerstone moves the pill itself and calls jQuery's trigger('change').
    page.focus("#attribute_rectangle_115_4")
    page.keyboard.press("ArrowLeft")  # Large / Red = 510
    assert state_of(page, PAGE_BADGE, "backorder") == BACKORDER[1]
    page.keyboard.press("ArrowRight")  # Large / Blue = 512
    state_of(page, PAGE_BADGE, "in_stock")
    page.keyboard.press("ArrowRight")  # Large / Green: no such variant
    state_of(page, PAGE_BADGE, None)
    assert page.is_disabled("#form-action-addToCart")

    # A quantity change asks nothing: the next change is the next request.
    page.fill("#qty-206", "3")
    page.press("#qty-206", "Tab")
    page.select_option("#attribute_select_114", "1")  # Small / Green: still none
    page.click("label[for=attribute_rectangle_115_4]")  # Small / Blue = 511
    assert state_of(page, PAGE_BADGE, "out_of_stock") == "Out of stock"

    # Exactly the theme's own requests: one at load, one per option change (7 changes).
    assert len(theme_posts(handler)) == 1 + 7
    assert own_posts(handler) == []
    assert badge_requests == [f"shop={STORE}&product=206&locale=en"]
    # The badge sits inside the form, between the stock text and the Add to Cart button.
    assert page.evaluate(
        """() => { const slot = document.querySelector('[data-backorder-slot]');
        return slot.parentNode.matches('form[data-cart-item-add]')
          && slot.previousElementSibling.matches('.form-field--stock')
          && slot.nextElementSibling.id === 'add-to-cart-wrapper'; }"""
    )


def test_quick_view_gets_its_own_badge_and_the_page_keeps_its_own(store, page):
    store_url, handler, badge_requests = store
    page.goto(f"{store_url}/tee/")
    state_of(page, PAGE_BADGE, "in_stock")
    page.select_option("#attribute_select_114", "2")  # Large / Red = 510
    state_of(page, PAGE_BADGE, "backorder")

    page.click(".quickview")  # the Sweater, inserted into #modal-content after load
    assert state_of(page, MODAL_BADGE, "out_of_stock") == "Out of stock"  # S = 301
    assert page.evaluate("() => document.querySelectorAll('form[data-cart-item-add]').length") == 2
    assert page.evaluate(
        """() => { const slot = document.querySelector('#modal [data-backorder-slot]');
        return slot.parentNode.matches('.quickView form[data-cart-item-add]')
          && slot.previousElementSibling.matches('.form-field--stock')
          && slot.nextElementSibling.id === 'add-to-cart-wrapper'; }"""
    )
    # The quick view has no BCData of its own: one request, with the theme's CSRF header.
    ((path, form, headers),) = own_posts(handler)
    assert path == "/remote/v1/product-attributes/167" and form["attribute[201]"] == ["7"]
    assert headers["x-xsrf-token"] == CSRF_TOKEN
    assert headers["x-requested-with"] == "stencil-utils"

    page.focus("#qv_attribute_201_7")
    page.keyboard.press("ArrowRight")  # L = 302, by jQuery's trigger('change')
    assert state_of(page, MODAL_BADGE, "in_stock") == "In stock"
    shot(page, "cornerstone-quick-view.png")
    assert state_of(page, PAGE_BADGE, "backorder") == BACKORDER[1]  # the page's, unchanged

    # The theme: load, Large, quick view load, L. The script: only the quick view's start.
    assert len(theme_posts(handler)) == 4 and len(own_posts(handler)) == 1
    assert sorted(badge_requests) == [
        f"shop={STORE}&product=167&locale=en",
        f"shop={STORE}&product=206&locale=en",
    ]


def test_the_cart_page_lists_the_backordered_lines_in_the_shoppers_language(store, page):
    store_url, handler, badge_requests = store
    handler.cart_lines[:] = [
        cart_line("a1", 206, 509, "Tee", 1, [("Size", "Small"), ("Colour", "Red")]),
        cart_line("a2", 206, 510, "Tee", 2, [("Size", "Large"), ("Colour", "Red")]),
        cart_line("a3", 167, 301, "Sweater", 1, [("Size", "S")]),
    ]
    page.goto(f"{store_url}/cart.php?lang=de-DE")
    notice = page.wait_for_selector("[data-backorder-cart]:not([hidden])", timeout=10_000)
    items = page.locator("[data-backorder-cart] li")
    assert items.count() == 1
    assert (
        items.inner_text()
        == "2 \u00d7 Tee (Large / Red) Nachbestellbar, Versand bis Do., 24. Dezember 2026"
    )
    assert page.get_attribute("[data-backorder-cart] time", "datetime") == "2026-12-24"
    assert notice.get_attribute("role") == "status"
    # Above the cart's lines, in the cart.
    assert page.evaluate(
        "() => document.querySelector('[data-backorder-cart]').nextElementSibling"
        ".matches('[data-cart-content]')"
    )
    shot(page, "cornerstone-cart.png")
    assert badge_requests == [f"shop={STORE}&variants=509,510,301&locale=de-DE"]

    # The theme re-renders the cart after a removal: the notice follows, with no new request.
    page.click(".cart-remove[data-cart-itemid=a2]")
    page.wait_for_selector("[data-backorder-cart][hidden]", state="attached", timeout=10_000)
    assert page.locator(".cart-item").count() == 2
    assert len(badge_requests) == 1


CLS_OBSERVER = """
window.__cls = 0;
window.__shifts = [];
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) {
    if (entry.hadRecentInput) continue;
    window.__cls += entry.value;
    window.__shifts.push([entry.value, entry.sources.map(s => s.node && s.node.outerHTML
      ? s.node.outerHTML.slice(0, 80) : String(s.node))]);
  }
}).observe({ type: 'layout-shift', buffered: true });
"""


@pytest.mark.parametrize("width", [412, 1280])  # Lighthouse's phone, a desktop
def test_showing_the_badge_shifts_nothing(store, page, width):
    """The slot is in the form with its height reserved as soon as the script runs; the page
    lays out nothing again when the badge appears. (An async script may still run after the
    first paint: then the slot's own insertion is the one shift, well under 0.01.)"""
    store_url, _, _ = store
    page.set_viewport_size({"width": width, "height": 823})
    page.add_init_script(CLS_OBSERVER)
    page.goto(f"{store_url}/tee/")
    state_of(page, PAGE_BADGE, "in_stock")
    # Two frames after the badge shows, the observer has every shift the badge caused.
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    cls = page.evaluate("() => window.__cls")
    assert cls < 0.01, page.evaluate("() => window.__shifts")


def test_the_script_stays_under_five_kilobytes_gzipped():
    raw = (ROOT / "static" / "badge-widget-bc.js").read_bytes()
    assert len(gzip.compress(raw, 9)) < 5_000
