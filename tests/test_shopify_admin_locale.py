"""The embedded Shopify pages in the admin user's language: Shopify opens the app with
`locale=fr`; the pages' links keep it; what the pages' scripts write, and what the JSON API
answers (the shell sends `Accept-Language: <html lang>`), is in that language too. A language
the app has no words for (ja) gets English."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests import factories
from tests.shopify_install_helpers import session_token
from tests.test_variant_table import catalogue

SHOP = "locale-shop.myshopify.com"
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/shots")
# Each page: its French title (also its label in the sidebar), a French sentence of the page
# itself, and English sentences its scripts write that must not be left in English.
PAGES = {
    "/shopify/app": (
        "Vue d'ensemble",
        "À traiter",
        ["The overview could not be loaded", "Nothing needs you right now"],
    ),
    "/shopify/app/variants": (
        "Variantes",
        "Rechercher un titre, une option ou un SKU",
        ["The variants could not be loaded", "Nothing was imported", "Choose a CSV file"],
    ),
    "/shopify/app/settings": (
        "Réglages",
        "Afficher les badges sur la boutique",
        ["Your session ended", "Nothing was saved"],
    ),
    "/shopify/app/emails": (
        "Textes des e-mails",
        "Variables utilisables",
        ["Rendering the preview", "This is the default wording"],
    ),
    "/shopify/app/support": (
        "Assistance",
        "Liste d'attente « Me prévenir »",
        ["The waitlist could not be loaded", "Nobody is waiting yet"],
    ),
}
# The support desk's own pages follow the five.
FRENCH_LABELS = [title for title, _, _ in PAGES.values()] + ["Service client"]
ENGLISH_LABELS = ["Overview", "Variants", "Settings", "Email wording", "Support", "Support desk"]


def sidebar(html: str) -> list[str]:
    nav = re.search(r"<s-app-nav>(.*?)</s-app-nav>", html, re.S).group(1)
    return [unescape(label) for label in re.findall(r"<s-link [^>]*>([^<]+)</s-link>", nav)]


def own_links(html: str) -> list[str]:
    nav = re.search(r'<nav class="app-pages"[^>]*>(.*?)</nav>', html, re.S).group(1)
    return [unescape(label) for label in re.findall(r"<a [^>]*>([^<]+)</a>", nav)]


def text_of(html: str) -> str:
    """The page as read (tags dropped, entities and JSON escapes undone)."""
    html = html.replace("\\u0027", "'").replace("\\u0026", "&")
    return unescape(" ".join(re.sub(r"<[^>]+>", " ", html).split()))


@pytest.mark.parametrize("path", PAGES)
def test_each_page_opened_with_locale_fr_is_in_french(app, client, path):
    factories.shopify_shop(SHOP)
    response = client.get(f"{path}?shop={SHOP}&id_token={session_token(SHOP)}&locale=fr")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    title, sentence, english = PAGES[path]
    assert '<html lang="fr">' in html
    assert unescape(re.search(r"<title>(.*?)</title>", html).group(1)) == (
        f"{title} · Backorder Badges"
    )
    assert unescape(re.search(r'<h1 class="page-title">(.*?)</h1>', html).group(1)) == title
    assert unescape(re.search(r'<s-page heading="([^"]*)"', html).group(1)) == title
    assert sidebar(html) == FRENCH_LABELS
    assert own_links(html) == FRENCH_LABELS
    page = text_of(html)
    assert sentence in page
    for words in english:
        assert words not in page, f"{words!r} is still in English on {path}"


@pytest.mark.parametrize("locale", ["ja", "en", None])
def test_a_language_without_words_gets_english(app, client, locale):
    factories.shopify_shop(SHOP)
    query = f"shop={SHOP}&id_token={session_token(SHOP)}" + (f"&locale={locale}" if locale else "")
    html = client.get(f"/shopify/app/variants?{query}").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "<title>Variants · Backorder Badges</title>" in html
    assert sidebar(html) == ENGLISH_LABELS
    assert "Search title, option or SKU" in html
    assert "The variants could not be loaded; reload the app." in text_of(html)


def test_an_error_page_reads_in_the_users_language(app, client):
    factories.shopify_shop(SHOP)
    other = "someone-else.myshopify.com"
    factories.shopify_shop(other)
    response = client.get(f"/shopify/app?shop={SHOP}&id_token={session_token(other)}&locale=de")
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert '<html lang="de">' in html
    assert "Bitte öffnen Sie die App erneut" in unescape(html)
    assert "The session is for another shop" not in html


def test_the_json_api_answers_in_the_language_the_request_asks_for(app, client):
    factories.shopify_shop(SHOP)

    def headers(language: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {session_token(SHOP)}", "Accept-Language": language}

    refused = client.get("/shopify/api/variants?state=sold", headers=headers("de"))
    assert refused.status_code == 400
    assert refused.json["error"].startswith("Unbekannter Status")
    english = client.get("/shopify/api/variants?state=sold", headers=headers("en-US,en;q=0.9"))
    assert english.json["error"].startswith("Unknown state")

    values = client.get("/shopify/api/settings", headers=headers("de")).json["values"]
    bad = client.post(
        "/shopify/api/settings", json={**values, "default_lead_days": "-4"}, headers=headers("de")
    )
    assert bad.status_code == 422
    assert "Bitte eine Zahl zwischen" in bad.json["errors"]["default_lead_days"]


# -- in Chromium, with Shopify's CDN out of reach -------------------------------------------------


@pytest.fixture
def live_url(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="locale-live", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def page(monkeypatch):
    if not CHROMIUM.exists():
        pytest.skip(f"headless Chromium not at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr("plugin.jobs.schedule_push", lambda shop_id: None)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.route("https://cdn.shopify.com/**", lambda route: route.abort())
        yield tab
        browser.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"shopify-fr-{name}.png"), full_page=True)


@pytest.mark.browser
def test_the_variants_page_script_writes_in_french(app, live_url, page):
    from playwright.sync_api import expect

    catalogue(factories.shopify_shop(SHOP))
    page.goto(
        f"{live_url}/shopify/app/variants?shop={SHOP}&id_token={session_token(SHOP)}&locale=fr"
    )
    section = page.locator("#variants")
    # Written by the page's script from the JSON API's answer.
    expect(section.locator("#vt-status")).to_have_text("Variantes 1\u20135 sur 5.")
    expect(section.get_by_role("button", name="Enregistrer Organic Tee · Small")).to_be_visible()
    expect(section.get_by_role("row").filter(has_text="TEE-M")).to_contain_text("3 sur 5")
    # A refusal from the API, in French, next to the field and in the status line.
    lead = section.get_by_label("Délai pour Enamel Mug · Red")
    lead.fill("-3")
    lead.press("Enter")
    expect(section.locator(".field-error")).to_contain_text("saisissez un nombre entre 0 et")
    expect(section.locator("#vt-status")).not_to_contain_text("Nothing")
    # Nothing to save in a row: said in French by the script itself.
    section.get_by_role("button", name="Enregistrer Organic Tee · Small").click()
    expect(section.locator("#vt-status")).to_have_text(
        "Rien à enregistrer pour Small : chaque valeur est inchangée."
    )
    shot(page, "variants")


@pytest.mark.browser
def test_the_settings_page_says_in_french_what_to_fix(app, live_url, page):
    from playwright.sync_api import expect

    factories.shopify_shop(SHOP)
    page.goto(
        f"{live_url}/shopify/app/settings?shop={SHOP}&id_token={session_token(SHOP)}&locale=fr"
    )
    expect(page).to_have_title("Réglages · Backorder Badges")
    lead = page.locator("#default_lead_days")
    lead.fill("-4")
    page.get_by_role("button", name="Enregistrer les réglages").click()
    # Written by the page's script, with the number of fields it counted.
    expect(page.locator("#save-status")).to_have_text(
        re.compile("^Rien n'a été enregistré\u00a0: corrigez [^0-9]*1[^0-9]*$")
    )
    expect(page.locator("#default_lead_days + .field-error")).to_contain_text(
        "saisissez un nombre entre"
    )
    shot(page, "settings")
