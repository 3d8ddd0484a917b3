"""The Shopify storefront on a Dawn-like theme, in headless Chromium: the app block and the app
embed (inside the wrapper Shopify puts around both on live stores) follow pills, dropdowns and
the keyboard, hide for a combination that does not exist, show the right badge on a product with
more than 250 variants, and add no layout shift; the embed's cart notice on the cart drawer and
the cart page follows cart changes. The store (tests/themes/dawn_like/) answers every request:
none reaches the app. Screenshots go to /tmp/shots/ (BB_SCREENSHOTS overrides).
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import pytest

from tests.themes.dawn_like.store import STORE, Store, big_product, sweater

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not at {CHROMIUM}"),
]
SMALL_SAGE, MEDIUM_SAGE, LARGE_SAGE, SMALL_NAVY, MEDIUM_NAVY = 44001, 44002, 44003, 44004, 44005
BADGE = "[data-backorder-badge]"
CLS = """() => new Promise((resolve) => {
  let total = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (!entry.hadRecentInput) total += entry.value;
  }).observe({ type: 'layout-shift', buffered: true });
  requestAnimationFrame(() => requestAnimationFrame(() => resolve(total)));
})"""


def shots() -> Path:
    folder = Path(os.environ.get("BB_SCREENSHOTS") or "/tmp/shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture
def visit(browser):
    contexts = []

    def opener(store: Store, path: str, wait_until: str = "load"):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        context.route("**/*", store.handle)
        page = context.new_page()
        page.goto(STORE + path, wait_until=wait_until)
        return page

    yield opener
    for context in contexts:
        context.close()


def reserved_room(page) -> str:
    """The room kept above Dawn's buy button for the embed's badge (none once it is there)."""
    return page.evaluate(
        "getComputedStyle(document.querySelector('.product-form__buttons'), '::before').content"
    )


def visible_badges(page) -> list[dict]:
    return page.evaluate(
        """[...document.querySelectorAll('[data-backorder-badge]')]
          .filter((b) => b.offsetParent !== null)
          .map((b) => ({ state: b.dataset.state, source: b.dataset.backorderSource,
                         label: b.querySelector('.backorder-badge__label').textContent }))"""
    )


def wait_for_badge(page, state: str, label: str | None = None) -> None:
    page.wait_for_function(
        """([state, label]) => {
          const shown = [...document.querySelectorAll('[data-backorder-badge]')]
            .filter((b) => b.offsetParent !== null);
          const text = shown.length && shown[0].querySelector('.backorder-badge__label')
            .textContent;
          return shown.length === 1 && shown[0].dataset.state === state &&
            (label === null || text === label);
        }""",
        arg=[state, label],
    )


def wait_for_no_badge(page) -> None:
    page.wait_for_function(
        "[...document.querySelectorAll('[data-backorder-badge]')]"
        ".every((b) => b.offsetParent === null)"
    )


def pick_size(page, size: str) -> None:
    page.locator("variant-selects label", has_text=size).click()


def pick_colour(page, colour: str) -> None:
    page.locator("variant-selects select").select_option(colour)


def product_pages(store: Store) -> list[str]:
    return [r for r in store.requests if r.startswith("GET /products/") and "section_id=" not in r]


def assert_no_request_to_the_app(store: Store) -> None:
    # Everything went to the store or the CDN (the route answers nothing else); nothing to the
    # app through its proxy: not the badge, not the cart notice, not the notify-me form (its
    # words are in the page, from the shop metafield).
    assert store.app_requests() == []


@pytest.mark.parametrize("with_embed", [False, True], ids=["block", "block+embed"])
def test_the_block_follows_pills_dropdowns_and_the_keyboard(visit, with_embed):
    store = Store([sweater()], embed=with_embed)
    page = visit(store, "/products/merino-crew")
    wait_for_badge(page, "in_stock", "In stock")
    assert visible_badges(page)[0]["source"] == "block"

    pick_size(page, "Medium")
    wait_for_badge(page, "backorder", "Backorder, ships by December 24, 2026")
    pick_colour(page, "Navy")
    wait_for_badge(page, "in_stock", "In stock")
    assert page.url.endswith(f"?variant={MEDIUM_NAVY}")

    # The keyboard: arrow keys move the checked pill (a change event, as with the mouse).
    page.focus("variant-selects input[value='Medium']")
    page.keyboard.press("ArrowLeft")
    wait_for_badge(page, "backorder", "Backorder, ships by January 15, 2027")
    assert page.url.endswith(f"?variant={SMALL_NAVY}")
    # And in the dropdown: the arrow key picks the previous colour.
    page.focus("variant-selects select")
    page.keyboard.press("ArrowUp")
    wait_for_badge(page, "in_stock", "In stock")
    assert page.url.endswith(f"?variant={SMALL_SAGE}")
    assert_no_request_to_the_app(store)
    # The theme's own section requests, one per change; the badge asked the store nothing.
    sections = [r for r in store.requests if "section_id=" in r]
    assert len(sections) == 4
    assert product_pages(store) == ["GET /products/merino-crew"]


@pytest.mark.parametrize("block,embed", [(True, False), (False, True)], ids=["block", "embed"])
def test_a_combination_that_does_not_exist_hides_the_badge(visit, block, embed):
    store = Store([sweater()], block=block, embed=embed)
    page = visit(store, f"/products/merino-crew?variant={LARGE_SAGE}")
    wait_for_badge(page, "out_of_stock", "Out of stock")
    pick_colour(page, "Navy")  # Large / Navy does not exist
    page.wait_for_function(
        "document.querySelector('[name=add]').textContent.trim() === 'Unavailable'"
    )
    wait_for_no_badge(page)
    assert page.evaluate("document.querySelector('product-form [name=id]').value") == ""
    assert "variant=" not in page.url
    pick_size(page, "Medium")
    wait_for_badge(page, "in_stock", "In stock")


def test_the_app_embed_in_shopifys_wrapper_sits_before_the_buy_button(visit):
    store = Store([sweater()], block=False, embed=True)
    page = visit(store, f"/products/merino-crew?variant={MEDIUM_SAGE}")
    wait_for_badge(page, "backorder", "Backorder, ships by December 24, 2026")
    where = page.evaluate(
        """(() => {
          const embed = document.querySelector('[data-backorder-badge-embed]');
          return {
            wrapped: document.querySelectorAll('.shopify-app-block').length,
            inBuyForm: embed.closest('form') && embed.closest('form').getAttribute('id'),
            next: embed.nextElementSibling && embed.nextElementSibling.getAttribute('name'),
          };
        })()"""
    )
    assert where == {
        "wrapped": 1,
        "inBuyForm": "product-form-template--2215__main",
        "next": "add",
    }
    assert reserved_room(page) == "none"  # the badge took the room kept for it
    page.screenshot(path=str(shots() / "dawn-product-embed.png"))
    pick_size(page, "Small")
    wait_for_badge(page, "in_stock", "In stock")
    page.focus("variant-selects input[value='Small']")
    page.keyboard.press("ArrowRight")
    wait_for_badge(page, "backorder", "Backorder, ships by December 24, 2026")
    assert_no_request_to_the_app(store)


def test_the_embed_and_the_block_show_one_badge(visit):
    store = Store([sweater()], block=True, embed=True)
    page = visit(store, "/products/merino-crew")
    assert page.locator(".shopify-app-block").count() == 2  # both wrapped alike by Shopify
    assert page.locator(BADGE).count() == 1
    assert visible_badges(page) == [{"state": "in_stock", "source": "block", "label": "In stock"}]
    assert reserved_room(page) == "none"  # no empty room left above the buy button


@pytest.mark.parametrize("wrapped", [True, False], ids=["wrapped", "unwrapped"])
def test_the_embed_stays_hidden_without_a_buy_button(visit, wrapped):
    # Only Dawn's installment form (a cart form without a submit): nothing to sit next to, so
    # nothing shows, not even below the footer (with or without Shopify's wrapper).
    store = Store([sweater()], block=False, embed=True, installment_only=True, wrap_embed=wrapped)
    page = visit(store, f"/products/merino-crew?variant={MEDIUM_SAGE}")
    assert visible_badges(page) == []
    assert page.evaluate(
        "document.querySelector('form.installment [data-backorder-badge]') === null"
    )


@pytest.mark.parametrize("block,embed", [(True, False), (False, True)], ids=["block", "embed"])
def test_a_product_with_more_than_250_variants_gets_the_right_badge(visit, block, embed):
    rope = big_product()
    store = Store([rope], block=block, embed=embed)
    far = rope.variants[700]  # Liquid lists only variants[0:250]
    page = visit(store, f"/products/climbing-rope?variant={far.id}")
    wait_for_badge(page, far.state, far.label)  # the server-rendered selected variant

    farther = rope.find(("39 m", "Colour 29"))
    page.locator("variant-selects select").nth(0).select_option("39 m")
    page.locator("variant-selects select").nth(1).select_option("Colour 29")
    wait_for_badge(page, farther.state, farther.label)
    assert rope.variants.index(farther) > 250
    assert_no_request_to_the_app(store)
    asked = product_pages(store)
    if block:
        # Read from the section Dawn re-rendered for the change: no request of its own.
        assert asked == [f"GET /products/climbing-rope?variant={far.id}"]
    else:
        # The embed has no section: the store's own page for that variant, once per variant.
        pages = [r for r in asked if r != f"GET /products/climbing-rope?variant={far.id}"]
        assert pages and all(r.startswith("GET /products/climbing-rope?variant=") for r in pages)
        assert len(pages) == len(set(pages))


@pytest.mark.parametrize("block,embed", [(True, False), (False, True)], ids=["block", "embed"])
def test_the_badge_adds_no_layout_shift(visit, block, embed):
    # The extension's script arrives only after the page has painted (a slow CDN).
    store = Store([sweater()], block=block, embed=embed)
    store.hold = {"backorder-badge.js"}
    page = visit(store, f"/products/merino-crew?variant={MEDIUM_SAGE}", wait_until="commit")
    page.wait_for_function("performance.getEntriesByType('paint').length > 0")
    store.release()
    page.wait_for_load_state("load")
    wait_for_badge(page, "backorder")
    assert page.evaluate(CLS) < 0.01


@pytest.mark.parametrize("block,embed", [(True, False), (False, True)], ids=["block", "embed"])
def test_a_backordered_variant_shows_the_notify_form_in_french_without_asking_the_app(
    app, visit, block, embed
):
    from plugin.extensions import db
    from plugin.services.badge_labels import storefront_config
    from plugin.services.notify_texts import DEFAULTS
    from tests import factories

    shop = factories.shopify_shop()
    shop.name = "Fjord & Fell"
    shop.published_locales = ["en", "fr"]
    shop.settings.notify_on_backorder = True
    db.session.commit()
    store = Store([sweater()], block=block, embed=embed, locale="fr-CA")
    store.shop_config = storefront_config(shop)  # what the app pushes to the shop metafield
    page = visit(store, f"/products/merino-crew?variant={MEDIUM_SAGE}")
    fr = DEFAULTS["fr"]
    form = page.locator("[data-backorder-notify]")
    form.get_by_role("heading", name=fr["heading"]).wait_for()
    assert form.get_by_label(fr["email_label"]).is_visible()
    consent = fr["consent"].replace("{shop}", "Fjord & Fell")
    assert form.get_by_label(consent).is_visible()
    assert form.get_attribute("lang") == "fr"
    if block:
        # Shown and worded from the first paint: the script moves nothing.
        assert page.evaluate(CLS) < 0.01
        page.screenshot(path=str(shots() / "dawn-product-notify.png"), full_page=True)
    pick_size(page, "Small")  # in stock: no form
    form.wait_for(state="hidden")
    pick_size(page, "Medium")
    form.get_by_role("heading", name=fr["heading"]).wait_for()
    page.wait_for_load_state("networkidle")
    assert_no_request_to_the_app(store)


def notice_lines(page, where: str) -> list[str]:
    return page.evaluate(
        """(where) => [...document.querySelectorAll(where + ' [data-backorder-cart-notice] li')]
          .map((li) => li.textContent.replace(/\\s+/g, ' ').trim())""",
        where,
    )


def test_the_cart_drawer_lists_the_lines_on_backorder(visit):
    store = Store([sweater()], block=False, embed=True)
    store.cart = [[SMALL_SAGE, 1]]
    page = visit(store, f"/products/merino-crew?variant={MEDIUM_SAGE}")
    assert page.locator("[data-backorder-cart-notice]").count() == 0  # nothing waits yet
    page.locator("product-form [name=add]").click()
    page.wait_for_function("document.querySelector('cart-drawer').classList.contains('active')")
    page.wait_for_function(
        "document.querySelector('#CartDrawer [data-backorder-cart-notice]') !== null"
    )
    assert notice_lines(page, "#CartDrawer") == [
        "Merino crew sweater - Medium / Sage: Backorder, ships by December 24, 2026"
    ]
    notice = page.locator("#CartDrawer [data-backorder-cart-notice]")
    assert notice.evaluate("n => n.nextElementSibling.classList.contains('cart__ctas')")
    assert "On backorder in your cart" in notice.text_content()
    assert notice.is_visible()
    page.screenshot(path=str(shots() / "dawn-cart-drawer.png"))
    assert_no_request_to_the_app(store)


def test_the_cart_page_notice_is_in_the_shoppers_language_and_follows_changes(visit):
    labels = {
        "fr": {
            "in_stock": "En stock",
            "backorder": "En réapprovisionnement, expédié le {eta}",
            "out_of_stock": "Épuisé",
        }
    }
    store = Store(
        [sweater()], locale="fr", shop_config={"labels": labels, "default_language": "fr"}
    )
    store.cart = [[SMALL_SAGE, 1], [MEDIUM_SAGE, 2], [SMALL_NAVY, 1]]
    page = visit(store, "/cart")
    footer = "#main-cart-footer"
    assert notice_lines(page, footer) == [
        "Merino crew sweater - Medium / Sage: En réapprovisionnement, expédié le 24 décembre 2026",
        "Merino crew sweater - Small / Navy: En réapprovisionnement, expédié le 15 janvier 2027",
    ]
    notice = page.locator(f"{footer} [data-backorder-cart-notice]")
    assert "En réapprovisionnement dans votre panier" in notice.text_content()
    assert notice.evaluate("n => n.nextElementSibling.classList.contains('cart__ctas')")
    page.screenshot(path=str(shots() / "dawn-cart-page.png"), full_page=True)

    page.locator("#CartItem-Item-2 [data-remove]").click()  # Medium / Sage leaves the cart
    page.wait_for_function(
        "document.querySelectorAll('#main-cart-footer [data-backorder-cart-notice] li')"
        ".length === 1"
    )
    assert notice_lines(page, footer) == [
        "Merino crew sweater - Small / Navy: En réapprovisionnement, expédié le 15 janvier 2027"
    ]
    page.locator("#CartItem-Item-2 [data-remove]").click()  # and now Small / Navy
    page.wait_for_function(
        "document.querySelector('#main-cart-footer [data-backorder-cart-notice]') === null"
    )
    assert page.locator("[data-backorder-cart-notice]").count() == 0
    assert_no_request_to_the_app(store)


def test_each_storefront_script_is_under_5_kb_gzipped():
    from tests.themes.dawn_like.store import EXTENSION

    scripts = {p.name: p.read_text() for p in (EXTENSION / "assets").glob("*.js")}
    embed = (EXTENSION / "blocks" / "backorder_embed.liquid").read_text()
    scripts["backorder_embed.liquid (inline)"] = "".join(
        re.findall(r"<script>(.*?)</script>", embed, re.S)
    )
    sizes = {name: len(gzip.compress(text.encode(), 9)) for name, text in scripts.items()}
    assert sizes["backorder-badge.js"] and sizes["backorder_embed.liquid (inline)"]
    assert all(size < 5 * 1024 for size in sizes.values()), sizes
