"""The sandbox store's checkout says, before the order is placed, that a line is on backorder and
when it ships: in words, in the shopper's language (`?lang=`), with a machine-readable date.
Screenshot: /tmp/shots/sandbox-checkout.png (BB_SCREENSHOTS overrides)."""

from __future__ import annotations

import os
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from plugin.extensions import db
from plugin.models import SandboxOrder
from plugin.services import sandbox_store
from plugin.services.shop_time import format_eta, shop_today
from tests.bigcommerce_storefront_support import chromium_page

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("BB_SCREENSHOTS", "/tmp/shots"))


def seed_tee():
    """The demo product (Small in stock, Medium on backorder in 14 days, Large sold out)."""
    shop = sandbox_store.ensure_shop(db.session)
    shop.published_locales = ["en", "fr"]
    db.session.commit()
    product, hooks = sandbox_store.seed_demo(db.session, shop)
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    return product.id, {v.title: v.id for v in product.variants}


def checkout(client, variant: int, **more):
    query = {"variant_id": variant, "quantity": 2, "email": "ada@example.com", **more}
    return client.get("/sandbox/checkout", query_string=query)


def notice_of(page: str) -> str:
    found = re.search(r"<div[^>]*data-backorder-cart[^>]*>(.*?)</div>", page, re.S)
    return found.group(0) if found else ""


def test_a_backordered_line_says_when_it_ships_before_the_order(client):
    _product, variants = seed_tee()
    eta = shop_today("UTC") + timedelta(days=14)

    page = checkout(client, variants["Medium"]).get_data(as_text=True)
    assert "2 \u00d7 Organic cotton tee (Medium)" in page
    notice = notice_of(page)
    assert 'role="status"' in notice
    assert (
        f'Backorder, ships by <time datetime="{eta.isoformat()}">{format_eta(eta)}</time>' in notice
    )
    # The order form carries the line on.
    assert f'name="variant_id" value="{variants["Medium"]}"' in page
    assert 'name="quantity" value="2"' in page

    # In the shopper's language: the label and the date.
    french = notice_of(checkout(client, variants["Medium"], lang="fr").get_data(as_text=True))
    assert 'lang="fr"' in french and format_eta(eta, "fr") in french
    assert "Backorder" not in french

    # A line in stock needs no notice.
    assert notice_of(checkout(client, variants["Small"]).get_data(as_text=True)) == ""


def test_an_unknown_variant_or_quantity_is_refused(client):
    _product, variants = seed_tee()
    assert checkout(client, 2**31 - 1).status_code == 404
    assert checkout(client, "x").status_code == 404
    assert checkout(client, variants["Small"], quantity="0").status_code == 400


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not at {CHROMIUM}")
def test_the_shopper_sees_the_notice_at_checkout_then_places_the_order(app):
    product_id, variants = seed_tee()
    eta = shop_today("UTC") + timedelta(days=14)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with chromium_page(viewport={"width": 1000, "height": 700}) as page:
            page.goto(f"http://127.0.0.1:{server.server_port}/sandbox/products/{product_id}")
            page.select_option("#variant-select", label="Medium")
            page.click("text=Add to cart & check out")
            notice = page.wait_for_selector("[data-backorder-cart]")
            assert notice.inner_text() == f"Backorder, ships by {format_eta(eta)}"
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "sandbox-checkout.png"), full_page=True)
            page.click("text=Place order")
            page.wait_for_selector(".flash.ok")
    finally:
        server.shutdown()
        server.server_close()
    order = db.session.scalars(select(SandboxOrder)).one()
    assert order.variant_id == variants["Medium"] and order.quantity == 1
