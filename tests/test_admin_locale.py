"""The merchant admin speaks the user's language where the platform gives it.

BigCommerce's `load` payload names the user's locale; the app carries it, signed, in its own
token, so every page of the control-panel iframe answers in it. The sandbox admin takes
`?lang=`, else the browser's Accept-Language. Four languages have words (English, the source,
French, German, Spanish); anything else is English. The catalogs are complete and compiled.
"""

from __future__ import annotations

import html
import re
import threading
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from werkzeug.serving import make_server

from plugin.extensions import db
from plugin.models import InboxStatus, Platform, WebhookEvent
from plugin.services import bigcommerce_session, sandbox_store, settings_form
from plugin.services.shops import find_shop
from tests import factories
from tests.bc_callback_helpers import FakeStore, load_jwt

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
LANGUAGES = ("fr", "de", "es")
STORE = "z4zn3wo"
OWNER = 7654321


@pytest.fixture
def store():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeStore(STORE).install(rsps)
        shop = factories.bigcommerce_store(
            STORE, token="token-a", webhook_secret="secret-a", owner=OWNER
        )
        shop.timezone = "Europe/Paris"
        db.session.commit()
        factories.product(
            shop,
            "111",
            "Linen shirt",
            [
                {
                    "platform_id": "1",
                    "title": "Small",
                    "sku": "LS-S",
                    "badge": ("in_stock", "", None),
                },
                {
                    "platform_id": "2",
                    "title": "Large",
                    "sku": "LS-L",
                    "badge": ("backorder", "", None),
                },
            ],
        )
        yield shop


def open_app(client, locale: str | None, **headers) -> str:
    """The app token `load` hands the user whose BigCommerce locale is `locale`."""
    jwt = load_jwt(STORE, user_id=OWNER, owner_id=OWNER, **({"locale": locale} if locale else {}))
    response = client.get(
        "/bigcommerce/load", query_string={"signed_payload_jwt": jwt}, headers=headers
    )
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)["token"][0]


def page(client, path: str, token: str, **headers) -> str:
    response = client.get(
        f"/bigcommerce/app/{STORE}{path}", query_string={"token": token}, headers=headers
    )
    assert response.status_code == 200, response.text[:500]
    return response.get_data(as_text=True)


def lang_of(html: str) -> str:
    return re.search(r'<html lang="([^"]*)"', html).group(1)


def visible_text(page_html: str) -> str:
    """The words a reader sees (tags dropped, entities read, French thin spaces as spaces)."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", page_html)).replace("\u00a0", " ")
    return " ".join(text.split())


def test_a_french_user_gets_the_overview_settings_and_variants_in_french(client, store):
    # The browser says English: what BigCommerce says of the user wins.
    token = open_app(client, "fr-FR", **{"Accept-Language": "en-US,en;q=0.9"})
    overview = page(client, "/overview", token, **{"Accept-Language": "en-US"})
    assert lang_of(overview) == "fr"
    text = visible_text(overview)
    assert "Vue d'ensemble" in text
    assert "À traiter" in text
    assert "Badges sur 2 variantes : 1 en stock, 1 en précommande, 0 en rupture" in text
    assert "Rien ne requiert votre attention pour l'instant." in text

    settings = page(client, "", token)
    assert lang_of(settings) == "fr"
    text = visible_text(settings)
    assert "Réglages des précommandes" in text
    assert "Afficher les badges sur la boutique" in text
    assert "Enregistrer les réglages" in text
    assert "Show badges on the storefront" not in text

    variants = page(client, "/variants", token)
    assert lang_of(variants) == "fr"
    text = visible_text(variants)
    assert "Variantes 1\u20132 sur 2" in text
    assert "Modification groupée" in text
    assert "Limite de précommande" in text
    assert 'aria-label="Date prévue pour Linen shirt · Small"' in variants or (
        "Date prévue pour" in variants
    )


def test_a_german_user_gets_german_and_the_token_carries_it_signed(app, client, store):
    token = open_app(client, "de-DE")
    identity = bigcommerce_session.read(app.config["SECRET_KEY"], token)
    assert identity.locale == "de_DE"
    overview = page(client, "/overview", token)
    assert lang_of(overview) == "de"
    assert "Übersicht" in visible_text(overview)
    settings = page(client, "", token)
    assert "Einstellungen für Nachbestellungen" in visible_text(settings)
    assert "Varianten 1\u20132 von 2" in visible_text(page(client, "/variants", token))


def test_a_language_without_words_is_english_whatever_the_browser_says(client, store):
    token = open_app(client, "ja-JP")
    overview = page(client, "/overview", token, **{"Accept-Language": "fr-FR,fr;q=0.9"})
    assert lang_of(overview) == "en"
    assert "Needs your attention" in visible_text(overview)
    settings = page(client, "", token, **{"Accept-Language": "fr"})
    assert "Show badges on the storefront" in visible_text(settings)


def test_a_token_without_a_locale_falls_back_to_the_browser_then_english(app, client, store):
    token = bigcommerce_session.issue(app.config["SECRET_KEY"], STORE, str(OWNER))
    assert (
        lang_of(page(client, "/overview", token, **{"Accept-Language": "es-MX,es;q=0.8"})) == "es"
    )
    assert lang_of(page(client, "/overview", token)) == "en"


def test_a_french_user_sees_a_refused_setting_explained_in_french(client, store):
    token = open_app(client, "fr-CA")
    db.session.expire_all()
    shop = find_shop(db.session, Platform.BIGCOMMERCE, STORE)
    form = settings_form.form_values(shop)
    form = {k: v for k, v in form.items() if v != "" and not isinstance(v, dict | list)}
    form.update(default_lead_days="beaucoup", label_backorder="Expédié bientôt", token=token)

    response = client.post(f"/bigcommerce/app/{STORE}", data=form)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert lang_of(html) == "fr"
    text = visible_text(html)
    assert "Délai : saisissez un nombre entier." in text
    assert "Insérez {eta} là où la date d'expédition doit apparaître." in text
    assert "Rien n'a été enregistré : corrigez les champs signalés ci-dessous (2)." in text


def test_a_date_on_the_overview_is_written_the_french_way(client, store):
    db.session.add(
        WebhookEvent(
            shop_id=store.id,
            platform=Platform.BIGCOMMERCE,
            shop_domain=STORE,
            event_id="e-1",
            topic="store/product/updated",
            body=b"{}",
            status=InboxStatus.PROCESSED,
            received_at=datetime(2026, 11, 30, 13, 5, tzinfo=UTC),
        )
    )
    db.session.commit()
    token = open_app(client, "fr-FR")
    text = visible_text(page(client, "/overview", token))
    # 13:05 UTC is 14:05 in Paris (CET), the shop's zone.
    assert "Dernière mise à jour de la boutique : 30 nov. 2026 14:05 CET" in text
    english = open_app(client, "en-GB")
    assert "Last store update: 2026-11-30 14:05 CET" in visible_text(
        page(client, "/overview", english)
    )


# -- the sandbox admin ----------------------------------------------------------------------------


def sandbox_seed():
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    _product, hooks = sandbox_store.create_product(
        db.session, shop, "Tee", [("S", "TEE-S", 0, "continue")]
    )
    db.session.commit()
    sandbox_store.deliver(shop, hooks)
    return shop


def test_the_sandbox_admin_follows_lang_then_the_browser(client):
    sandbox_seed()
    spanish = client.get("/sandbox/settings?lang=es")
    html = spanish.get_data(as_text=True)
    assert lang_of(html) == "es"
    assert "Ajustes de pedidos pendientes" in visible_text(html)
    # The choice stays on the admin's own links and form.
    assert 'href="/sandbox/variants?lang=es"' in html
    assert 'action="/sandbox/settings?lang=es"' in html

    german = client.get("/sandbox/overview", headers={"Accept-Language": "de-CH,de;q=0.9,en;q=0.5"})
    assert lang_of(german.get_data(as_text=True)) == "de"
    assert "Braucht Ihre Aufmerksamkeit" in visible_text(german.get_data(as_text=True))

    # Nothing typed reaches the page: an unknown language is the browser's, then English.
    odd = client.get('/sandbox/variants?lang="><script>', headers={"Accept-Language": "xx"})
    assert lang_of(odd.get_data(as_text=True)) == "en"
    assert "<script>" not in odd.get_data(as_text=True)


def test_the_shoppers_pages_keep_their_own_language(client):
    """The admin's choice does not leak to the sandbox's product page (the shopper's side)."""
    sandbox_seed()
    product = client.get("/sandbox/", headers={"Accept-Language": "fr"})
    assert product.status_code == 200
    assert lang_of(product.get_data(as_text=True)) == "en"


# -- the catalogs -------------------------------------------------------------------------------


def extracted_ids() -> set[str]:
    """Every message the admin's templates and services mark, as `pybabel extract` finds it."""
    with open(ROOT / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {**DEFAULT_KEYWORDS, "lazy_gettext": None}
    ids = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        ids.add(message[0] if isinstance(message, tuple) else message)
    return ids


def test_every_admin_message_has_a_translation_in_every_language():
    ids = extracted_ids()
    assert len(ids) > 150  # the extraction found the admin, not nothing
    for language in LANGUAGES:
        with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as po:
            catalog = read_po(po, locale=language)
        translated = {}
        for message in catalog:
            if not message.id:
                continue
            key = message.id[0] if isinstance(message.id, tuple) else message.id
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if all(strings) and not message.fuzzy:
                translated[key] = (message.id, strings)
        missing = sorted(ids - set(translated))
        assert missing == [], f"{language}: no translation for {missing[:5]}"
        for key, (source, strings) in translated.items():
            # A translation fills in what the English does: no placeholder lost or invented.
            forms = source if isinstance(source, tuple) else (source,)
            wanted = set(re.findall(r"%\(\w+\)[sr]", " ".join(forms)))
            for text in strings:
                found = set(re.findall(r"%\(\w+\)[sr]", text))
                assert found <= wanted, (language, key, text)
                if not isinstance(source, tuple):
                    assert found == wanted, (language, key, text)
                assert re.findall(r"\{\w+\}", text) == re.findall(r"\{\w+\}", key), text


def test_the_committed_mo_files_are_the_po_files_compiled():
    """Run `pybabel compile -d translations` after editing a .po (see README)."""
    for language in LANGUAGES:
        folder = TRANSLATIONS / language / "LC_MESSAGES"
        with open(folder / "messages.po", "rb") as po:
            catalog = read_po(po, locale=language)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        assert (folder / "messages.mo").read_bytes() == compiled.getvalue(), language


# -- what a French merchant sees --------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
def live_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="locale-live", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not at {CHROMIUM}")
def test_the_french_control_panel_pages_fit_at_1280(client, store, live_url):
    from playwright.sync_api import expect, sync_playwright

    token = open_app(client, "fr-FR")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        # The browser says English; the user's BigCommerce language wins.
        tab = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
        tab.goto(f"{live_url}/bigcommerce/app/{STORE}/overview?token={token}")
        expect(tab.get_by_role("heading", name="Vue d'ensemble")).to_be_visible()
        tab.screenshot(path=str(ARTIFACTS / "admin-fr-bigcommerce-overview.png"), full_page=True)

        tab.get_by_role("link", name="Réglages", exact=True).click()
        expect(tab.get_by_role("heading", name="Réglages des précommandes")).to_be_visible()
        tab.screenshot(path=str(ARTIFACTS / "admin-fr-bigcommerce-settings.png"), full_page=True)

        tab.get_by_role("link", name="Variantes", exact=True).click()
        expect(tab.get_by_role("heading", name="Variantes 1\u20132 sur 2")).to_be_visible()
        tab.get_by_label("Limite de précommande pour Linen shirt · Large").fill("4")
        tab.get_by_role("button", name="Enregistrer cette page").click()
        expect(tab.get_by_role("status").first).to_contain_text("1 variante(s) enregistrée(s)")
        # Nothing on the page is wider than the window: the French words fit.
        assert tab.evaluate("document.documentElement.scrollWidth") <= 1280
        tab.screenshot(path=str(ARTIFACTS / "admin-fr-bigcommerce-variants.png"), full_page=True)
        browser.close()
