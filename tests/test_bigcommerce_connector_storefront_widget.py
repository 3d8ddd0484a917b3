"""The BigCommerce storefront script in headless Chromium, on a page built like a Stencil
(Cornerstone) product page: the badge follows the shopper's option choices.

The app and a stand-in storefront run on loopback (tests/bigcommerce_storefront_support.py).
"""

from __future__ import annotations

from datetime import date

import pytest

from tests import factories
from tests.bigcommerce_storefront_support import (
    BADGE_PILL,
    badge_text,
    chromium_page,
    storefront_servers,
    wait_for_state,
)
from tests.bigcommerce_support import STORE

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
    with storefront_servers(app) as running:
        yield running


@pytest.fixture
def page():
    with chromium_page() as opened:
        yield opened


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
