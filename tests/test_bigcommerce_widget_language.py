"""The BigCommerce storefront script speaks the page's language, in headless Chromium.

A Stencil theme writes the storefront's language as `<html lang="…">`. The script asks the
badge API with it, so the shopper reads the store's labels in that language (the merchant's
own wording where they gave one) and the ship-by date the way that language writes it; a
language the store does not publish gets the store's default language.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from plugin.extensions import db
from plugin.services import badge_labels
from plugin.services.badging import refresh_badge
from tests import factories
from tests.bigcommerce_storefront_support import (
    badge_text,
    chromium_page,
    storefront_servers,
    wait_for_state,
)
from tests.bigcommerce_support import STORE

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHRISTMAS = date(2026, 12, 24)
# What the merchant worded for French shoppers in the settings (German keeps the defaults).
FRENCH = {
    "in_stock": "Disponible tout de suite",
    "backorder": "Sur commande : expédié le {eta}",
    "out_of_stock": "Victime de son succès",
}


def seed_store(*, primary: str, published: list[str], labels: dict | None = None) -> None:
    """A BigCommerce store publishing `published` (`primary` first), with the Tee's variants:
    509 in stock, 510 on backorder until Christmas, 511 sold out; badges decided by the app."""
    shop = factories.bigcommerce_store()
    shop.locale = primary
    shop.published_locales = published
    settings = shop.settings
    for kind, text in (labels or {}).get(primary, {}).items():
        setattr(settings, f"label_{kind}", text)
    others = {lang: kinds for lang, kinds in (labels or {}).items() if lang != primary}
    badge_labels.apply(
        shop,
        {(lang, kind): text for lang, kinds in others.items() for kind, text in kinds.items()},
    )
    db.session.commit()
    product = factories.product(
        shop,
        "206",
        "Tee",
        [
            {"platform_id": "509", "inventory_total": 4},
            {"platform_id": "510", "sells_past_zero": True, "eta_override": CHRISTMAS},
            {"platform_id": "511"},
        ],
    )
    for variant in product.variants:
        refresh_badge(db.session, shop, variant, cause="test")
    db.session.commit()


@pytest.fixture
def page():
    with chromium_page() as opened:
        yield opened


def open_product(page, store_url: str, lang: str) -> None:
    page.goto(f"{store_url}/tee/?lang={lang}")
    assert page.get_attribute("html", "lang") == lang


def choose_large(page) -> None:
    page.select_option("select[name='attribute[114]']", "2")  # Large / Red = variant 510


def test_a_french_page_shows_the_merchants_french_labels_and_a_french_date(app, page):
    seed_store(primary="en", published=["en", "fr", "de"], labels={"fr": FRENCH})
    with storefront_servers(app) as (store_url, _, badge_requests):
        open_product(page, store_url, "fr")
        assert badge_text(page) == "Disponible tout de suite"  # Small / Red = 509

        choose_large(page)
        text = wait_for_state(page, "backorder")
        assert text == "Sur commande : expédié le jeu. 24 décembre 2026"
        # The date is the label's own, said once, and machine-readable.
        assert page.inner_text("[data-backorder-badge] time") == "jeu. 24 décembre 2026"
        assert page.get_attribute("[data-backorder-badge] time", "datetime") == "2026-12-24"
        assert "December" not in page.inner_text("body")

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "bigcommerce-product-fr.png"), full_page=True)

        page.check("#c4")
        page.select_option("select[name='attribute[114]']", "1")  # Small / Blue = 511
        assert wait_for_state(page, "out_of_stock") == "Victime de son succès"
        assert badge_requests == [f"shop={STORE}&product=206&locale=fr"]


def test_a_regional_german_page_shows_german_defaults(app, page):
    seed_store(primary="en", published=["en", "fr", "de"], labels={"fr": FRENCH})
    with storefront_servers(app) as (store_url, _, _):
        open_product(page, store_url, "de-DE")
        assert badge_text(page) == "Auf Lager"
        choose_large(page)
        assert wait_for_state(page, "backorder") == (
            "Nachbestellbar, Versand bis Do., 24. Dezember 2026"
        )


def test_a_language_the_store_does_not_publish_gets_its_default_language(app, page):
    seed_store(primary="en", published=["en", "fr", "de"], labels={"fr": FRENCH})
    with storefront_servers(app) as (store_url, _, _):
        open_product(page, store_url, "ja")
        assert badge_text(page) == "In stock"
        choose_large(page)
        assert wait_for_state(page, "backorder") == "Backorder, ships by Thu, December 24, 2026"
        assert page.inner_text("[data-backorder-badge] time") == "Thu, December 24, 2026"


def test_a_french_store_shows_french_to_a_language_it_does_not_publish(app, page):
    seed_store(primary="fr", published=["fr", "en"], labels={"fr": FRENCH})
    with storefront_servers(app) as (store_url, _, _):
        open_product(page, store_url, "ja")
        assert badge_text(page) == "Disponible tout de suite"
        choose_large(page)
        # Label and date both in the store's language: no English date beside a French label.
        text = wait_for_state(page, "backorder")
        assert text == "Sur commande : expédié le jeu. 24 décembre 2026"
        assert page.inner_text("[data-backorder-badge] time") == "jeu. 24 décembre 2026"
