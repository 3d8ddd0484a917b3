"""The embedded app is pages, not one long form: the admin's sidebar (App Bridge `s-app-nav`) lists
them, Polaris draws them, the settings form drives Shopify's contextual save bar, and every page
still opens, reads and navigates when Shopify's CDN cannot be reached."""

from __future__ import annotations

import json
import re
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from tests import factories
from tests.shopify_install_helpers import session_token

SHOP = "cool-shop.myshopify.com"
OTHER = "other-shop.myshopify.com"
PAGES = {
    "/shopify/app": ("Overview", 'id="overview"'),
    "/shopify/app/variants": ("Variants", 'id="variants"'),
    "/shopify/app/settings": ("Settings", 'id="settings-form"'),
    "/shopify/app/emails": ("Email wording", 'id="mail-templates"'),
    "/shopify/app/support": ("Support", 'id="waitlist"'),
}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def csp_for(shop: str) -> str:
    return f"frame-ancestors https://{shop} https://admin.shopify.com;"


@pytest.mark.parametrize("path", PAGES)
def test_each_page_opens_with_a_session_token_and_lists_every_page(app, client, path):
    factories.shopify_shop(SHOP)
    response = client.get(f"{path}?shop={SHOP}&id_token={session_token(SHOP)}&locale=en")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == csp_for(SHOP)
    html = response.get_data(as_text=True)
    title, marker = PAGES[path]
    assert marker in html
    assert f"<title>{title} · Backorder Badges</title>" in html
    head = html.split("</head>")[0]
    assert '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>' in head
    assert '<script src="https://cdn.shopify.com/shopifycloud/polaris-1.js"></script>' in head

    # The admin's sidebar: every page, the first as the app's home.
    nav = re.search(r"<s-app-nav>(.*?)</s-app-nav>", html, re.S).group(1)
    links = re.findall(r'<s-link href="([^"]+)"( rel="home")?>([^<]+)</s-link>', nav)
    assert [(href, label) for href, _, label in links] == [(p, PAGES[p][0]) for p in PAGES] + [
        ("/shopify/app/desk", "Support desk")
    ]
    assert [bool(home) for _, home, _ in links] == [True, False, False, False, False, False]

    # The page's own links (for when App Bridge is not there) keep the shop, token and locale,
    # and mark where the merchant is.
    own = re.search(r'<nav class="app-pages"[^>]*>(.*?)</nav>', html, re.S).group(1)
    current = re.findall(r'<a href="([^"]+)" aria-current="page">([^<]+)</a>', own)
    assert [label for _, label in current] == [title]
    for href in re.findall(r'href="([^"]+)"', own):
        assert f"shop={SHOP}" in href and "id_token=" in href and "locale=en" in href


@pytest.mark.parametrize("path", PAGES)
def test_each_page_refuses_a_forged_or_foreign_token(app, client, path):
    factories.shopify_shop(SHOP)
    forged = client.get(f"{path}?shop={SHOP}&id_token={session_token(SHOP, secret='nope')}")
    assert forged.status_code == 401
    assert PAGES[path][1] not in forged.get_data(as_text=True)
    # A token for another shop, named with this shop: refused, and nothing of this shop shown.
    factories.shopify_shop(OTHER)
    foreign = client.get(f"{path}?shop={SHOP}&id_token={session_token(OTHER)}")
    assert foreign.status_code == 401
    assert "The session is for another shop" in foreign.get_data(as_text=True)


@pytest.mark.parametrize("path", PAGES)
def test_a_sidebar_click_without_a_token_bounces_through_app_bridge(app, client, path):
    factories.shopify_shop(SHOP)
    response = client.get(f"{path}?shop={SHOP}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "shopify.idToken" in html and PAGES[path][1] not in html


def test_the_settings_form_drives_the_contextual_save_bar(app, client):
    factories.shopify_shop(SHOP)
    html = client.get(f"/shopify/app/settings?shop={SHOP}&id_token={session_token(SHOP)}").get_data(
        as_text=True
    )
    form = re.search(r'<form [^>]*id="settings-form"[^>]*>', html).group(0)
    assert "data-save-bar" in form and "data-discard-confirmation" in form
    # Its own Save button stays, for when App Bridge (and so the save bar) is not there.
    assert re.search(r'<button type="submit"[^>]*>Save settings</button>', html)


# -- in a browser -------------------------------------------------------------------------------


@pytest.fixture
def live_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Chromium is not installed")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.mark.browser
def test_without_the_cdn_every_page_is_reached_by_the_pages_own_links(app, live_url, browser):
    from playwright.sync_api import expect

    factories.shopify_shop(SHOP)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route("https://cdn.shopify.com/**", lambda route: route.abort())
    page.goto(f"{live_url}/shopify/app?shop={SHOP}&id_token={session_token(SHOP)}")
    nav = page.get_by_role("navigation", name="Backorder Badges")
    expect(nav).to_be_visible()
    for path, (title, _marker) in list(PAGES.items())[1:]:
        nav.get_by_role("link", name=title, exact=True).click()
        expect(page).to_have_title(f"{title} · Backorder Badges")
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        assert page.url.startswith(f"{live_url}{path}?")
        expect(nav.get_by_role("link", name=title, exact=True)).to_have_attribute(
            "aria-current", "page"
        )


@pytest.mark.browser
def test_inside_the_admin_a_link_opens_the_page_with_a_fresh_session_token(app, live_url, browser):
    """App Bridge's documented `shopify.idToken()` is stood in for (its CDN is out of reach): a
    link between pages must ask it for a fresh token, not reuse the page's own expiring one."""
    from playwright.sync_api import expect

    factories.shopify_shop(SHOP)
    fresh = session_token(SHOP, exp_in=55)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route(
        "https://cdn.shopify.com/shopifycloud/app-bridge.js",
        lambda route: route.fulfill(
            content_type="text/javascript",
            body=f"window.shopify = {{ idToken: async () => {fresh!r} }};",
        ),
    )
    page.route("https://cdn.shopify.com/shopifycloud/polaris-1.js", lambda route: route.abort())
    opened_with = session_token(SHOP)
    page.goto(f"{live_url}/shopify/app/settings?shop={SHOP}&id_token={opened_with}")
    # In the admin the sidebar lists the pages: the page's own links step aside.
    expect(page.get_by_role("navigation", name="Backorder Badges")).to_be_hidden()
    page.get_by_role("link", name="Variants page").click()
    expect(page).to_have_title("Variants · Backorder Badges")
    assert f"id_token={fresh}" in page.url and opened_with not in page.url


@pytest.mark.browser
def test_a_sidebar_click_reopens_the_page_with_a_token_and_the_users_locale(app, live_url, browser):
    """The admin's sidebar opens a page with no token: the bounce page asks App Bridge (stood in
    for, with its documented `idToken()` and `config`) and reloads with a token and the locale."""
    from playwright.sync_api import expect

    factories.shopify_shop(SHOP)
    fresh = session_token(SHOP, exp_in=55)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    config = json.dumps({"shop": SHOP, "locale": "fr"})
    stand_in = f"window.shopify = {{ idToken: async () => {fresh!r}, config: {config} }};"
    page.route(
        "https://cdn.shopify.com/shopifycloud/app-bridge.js",
        lambda route: route.fulfill(content_type="text/javascript", body=stand_in),
    )
    page.route("https://cdn.shopify.com/shopifycloud/polaris-1.js", lambda route: route.abort())
    page.goto(f"{live_url}/shopify/app/variants?shop={SHOP}")
    expect(page.locator("#variants")).to_be_attached()
    assert f"id_token={fresh}" in page.url and "locale=fr" in page.url
