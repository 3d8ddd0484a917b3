"""`/` in production: a small product page with install links, not a 404. A developer's machine
still lands in the sandbox."""

from __future__ import annotations

import os
import re
import threading
from html import unescape
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from plugin import create_app
from tests.conftest import base_env

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("BB_LANDING_SHOTS", "/tmp/shots"))


@pytest.fixture
def production_app(database_url, redis_url):
    application = create_app(
        base_env(
            APP_ENV="production",
            APP_URL="https://backorder-badges.example",
            SECRET_KEY="a-real-production-secret-key-for-tests",
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            SANDBOX_ENABLED="0",
        )
    )
    with application.app_context():
        yield application


def _field_error(page: str) -> str | None:
    found = re.search(r'<p class="field-error" id="shop-error">(.*?)</p>', page)
    return unescape(found.group(1)) if found else None


def test_production_root_is_a_landing_page_with_install_links(production_app):
    response = production_app.test_client().get("/")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<h1>Keep selling when stock runs out" in page
    # The Shopify install: a form asking for the shop, sent with GET to the install route.
    form = re.search(r'<form method="get" action="([^"]+)"', page)
    assert form and form.group(1) == "/install/shopify"
    assert '<label for="shop">' in page and 'id="shop" name="shop"' in page
    assert ">Install on Shopify</button>" in page
    # BigCommerce installs from its marketplace: a link, and how to find the app there.
    assert re.search(r'<a class="button" href="https://www\.bigcommerce\.com/apps/"[^>]*>'
                     r"Install on BigCommerce</a>", page)  # fmt: skip
    assert "Apps \u203a Marketplace" in unescape(page)
    assert "sandbox" not in page.lower()  # a product page, not a developer's page


def test_production_root_is_the_landing_page_even_with_the_sandbox_on(database_url, redis_url):
    application = create_app(
        base_env(
            APP_ENV="production",
            SECRET_KEY="a-real-production-secret-key-for-tests",
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            SANDBOX_ENABLED="1",
        )
    )
    with application.app_context():
        response = application.test_client().get("/")
    assert response.status_code == 200
    assert "Install on Shopify" in response.get_data(as_text=True)


def test_outside_production_root_goes_to_the_sandbox(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/sandbox/"


def test_outside_production_without_the_sandbox_root_is_the_landing_page(database_url):
    application = create_app(base_env(DATABASE_URL=database_url, SANDBOX_ENABLED="0"))
    with application.app_context():
        response = application.test_client().get("/")
    assert response.status_code == 200
    assert "Install on BigCommerce" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "typed",
    [
        "my-store",
        "my-store.myshopify.com",
        "  My-Store.myshopify.com  ",
        "https://my-store.myshopify.com/admin/products",
    ],
)
def test_the_shopify_form_sends_the_merchant_to_shopify_to_approve_the_app(production_app, typed):
    response = production_app.test_client().get("/install/shopify", query_string={"shop": typed})

    assert response.status_code == 302
    assert response.headers["Location"] == (
        "https://admin.shopify.com/store/my-store/oauth/install?client_id=shopify-client-id"
    )


LIKE = "Enter your store's myshopify.com address, like my-store.myshopify.com."


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter your store's myshopify.com address to install."),
        ("evil.example/phish", LIKE),
        ("my store", LIKE),
        ("<script>alert(1)</script>", LIKE),
        ("x" * 100_000, LIKE),
    ],
)  # fmt: skip
def test_a_bad_shop_address_is_refused_next_to_the_field(production_app, typed, message):
    response = production_app.test_client().get("/install/shopify", query_string={"shop": typed})

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert _field_error(page) == message
    assert 'aria-invalid="true" aria-describedby="shop-error"' in page
    assert "<script>alert(1)</script>" not in page  # what was typed is shown escaped
    assert "Location" not in response.headers


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not installed at {CHROMIUM}")
def test_the_landing_page_looks_like_a_product_page_in_chromium(production_app):
    from playwright.sync_api import sync_playwright

    server = make_server("127.0.0.1", 0, production_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="landing-server", daemon=True)
    thread.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            assert page.get_by_role("heading", level=1).inner_text().startswith("Keep selling")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "landing.png"), full_page=True)

            # A merchant types a wrong address: told next to the field, by keyboard alone.
            page.get_by_label("Your store's myshopify.com address").fill("not a shop")
            page.keyboard.press("Enter")
            page.wait_for_selector("#shop-error")
            assert (
                page.get_by_label("Your store's myshopify.com address").get_attribute(
                    "aria-invalid"
                )
                == "true"
            )
            page.screenshot(path=str(SHOTS / "landing-refused.png"), full_page=True)
            bigcommerce = page.get_by_role("link", name="Install on BigCommerce")
            assert bigcommerce.get_attribute("href") == "https://www.bigcommerce.com/apps/"
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
