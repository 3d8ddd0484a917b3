"""The storefront badge in Chromium: it follows the variant the shopper picks, using only the
data rendered into the page (any request the page makes would fail this test)."""

from __future__ import annotations

import shutil

import pytest

from tests.test_shopify_theme_extension_render import EXTENSION, render, variant

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def page():
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Chromium is not installed")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.requests = requests
        yield page
        browser.close()


def product_page(badge_html: str, with_block: bool = True) -> str:
    script = (EXTENSION / "assets" / "backorder-badge.js").read_text()
    block = f'<div class="shopify-app-block">{badge_html}</div>' if with_block else ""
    return f"""<!doctype html><html><body><main><section class="shopify-section">
      <form action="/cart/add" method="post">
        <select name="id">
          <option value="1" selected>Small</option>
          <option value="2">Medium</option>
          <option value="3">Large</option>
        </select>
        <button type="submit">Add to cart</button>
      </form>
      {block}
    </section></main>
    {"" if with_block else f"<div data-backorder-badge-embed>{badge_html}</div>"}
    <script>{script}</script></body></html>"""


VARIANTS = [
    variant(1, "in_stock", "In stock"),
    variant(2, "backorder", "Backorder, ships by Thu, December 24, 2026", "2026-12-24"),
    variant(3, "out_of_stock", "Out of stock"),
]


def test_badge_follows_the_selected_variant_without_requests(page):
    page.set_content(product_page(render(VARIANTS)))
    label = page.locator(".backorder-badge__label")
    badge = page.locator("[data-backorder-badge]")
    assert label.text_content() == "In stock"

    page.select_option("select[name=id]", "2")
    page.wait_for_function(
        "document.querySelector('[data-backorder-badge]').dataset.state === 'backorder'"
    )
    assert label.text_content() == "Backorder, ships by Thu, December 24, 2026"
    assert badge.get_attribute("role") == "status"
    assert badge.is_visible()

    page.select_option("select[name=id]", "3")
    page.wait_for_function(
        "document.querySelector('[data-backorder-badge]').dataset.state === 'out_of_stock'"
    )
    assert label.text_content() == "Out of stock"
    assert page.requests == []


def test_in_stock_badge_can_be_switched_off(page):
    page.set_content(product_page(render(VARIANTS, show_in_stock=False)))
    badge = page.locator("[data-backorder-badge]")
    assert not badge.is_visible()
    page.select_option("select[name=id]", "2")
    page.wait_for_function("!document.querySelector('[data-backorder-badge]').hidden")
    page.select_option("select[name=id]", "1")
    page.wait_for_function("document.querySelector('[data-backorder-badge]').hidden")


def test_an_empty_or_unknown_variant_hides_the_badge(page):
    # The app embed's placement is tested on a Dawn-like page (test_shopify_theme_dawn_browser).
    page.set_content(product_page(render(VARIANTS, selected=1)))
    badge = page.locator("[data-backorder-badge]")
    assert badge.is_visible()
    page.evaluate(
        """(() => {
          const select = document.querySelector('select[name=id]');
          select.add(new Option('Gone', '99'));
          select.value = '99';
          select.dispatchEvent(new Event('change', { bubbles: true }));
        })()"""
    )
    page.wait_for_function("document.querySelector('[data-backorder-badge]').hidden")
    page.select_option("select[name=id]", "3")
    page.wait_for_function(
        "document.querySelector('[data-backorder-badge]').dataset.state === 'out_of_stock'"
    )
    page.evaluate(
        """(() => {
          const select = document.querySelector('select[name=id]');
          select.add(new Option('Unavailable', ''));
          select.value = '';
          select.dispatchEvent(new Event('change', { bubbles: true }));
        })()"""
    )
    page.wait_for_function("document.querySelector('[data-backorder-badge]').hidden")
    assert page.requests == []
