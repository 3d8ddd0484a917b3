"""Badge labels and dates in the shopper's language: the labels per language in the settings
(refused per field like the primary's), the badge API answering in the page's language, the
Shopify theme block composing the label from the shop metafield, and that metafield's push.
"""

from __future__ import annotations

import html
import json
from datetime import date

import pytest
import responses
from graphql import parse, validate

from domain.events import StoreFacts
from plugin.extensions import db
from plugin.platforms import connector_for
from plugin.services import badge_labels, sandbox_store, settings_form
from plugin.services.reconcile import apply_store_facts
from plugin.services.shop_time import format_eta
from tests import factories
from tests.shopify_webhook_helpers import ENDPOINT, gql_answer, operation_of, sent
from tests.test_shopify_graphql_schema import load_schema
from tests.test_shopify_theme_extension_render import render, variant

CHRISTMAS = date(2026, 12, 24)


def test_dates_are_written_the_way_each_language_writes_them():
    assert format_eta(CHRISTMAS) == "Thu, December 24, 2026"
    assert format_eta(CHRISTMAS, "fr") == "jeu. 24 décembre 2026"
    assert format_eta(CHRISTMAS, "fr-CA") == "jeu. 24 décembre 2026"
    assert format_eta(CHRISTMAS, "de_DE") == "Do., 24. Dezember 2026"
    assert format_eta(CHRISTMAS, "es") == "jue, 24 de diciembre de 2026"
    assert format_eta(CHRISTMAS, "zz-not-a-locale") == "Thu, December 24, 2026"
    assert format_eta(None, "fr") == ""


def test_published_languages_come_from_the_store_facts_primary_first(app):
    shop = factories.shopify_shop()
    apply_store_facts(shop, StoreFacts(locale="fr", published_locales=("fr", "en", "de-CH")))
    assert shop.published_locales == ["fr", "en", "de-CH"]
    assert badge_labels.shop_languages(shop) == ["fr", "en", "de"]
    apply_store_facts(shop, StoreFacts())  # a platform that says nothing changes nothing
    assert shop.published_locales == ["fr", "en", "de-CH"]


# -- the settings form --------------------------------------------------------------------------


def bilingual_shop():
    shop = sandbox_store.ensure_shop(db.session)
    shop.published_locales = ["en", "fr"]
    db.session.commit()
    return shop


def saved_form(shop, **changes) -> dict:
    values = settings_form.form_values(shop)
    form = {k: v for k, v in values.items() if isinstance(v, str)}
    return {**form, **changes}


def test_the_form_offers_each_published_language_with_the_default_wording(app, client):
    bilingual_shop()
    page = client.get("/sandbox/settings").get_data(as_text=True)
    assert 'id="badge-labels-fr"' in page
    assert 'name="badge_label-fr-backorder"' in page
    assert 'placeholder="En précommande, expédié d&#39;ici le {eta}"' in page
    assert 'id="badge-labels-de"' not in page  # German is not published


def test_labels_per_language_are_saved_and_an_empty_one_restores_the_default(app):
    shop = bilingual_shop()
    form = saved_form(shop, **{"badge_label-fr-backorder": "Bientôt : le {eta}"})
    submission, _changed = settings_form.save(db.session, shop, form)
    assert submission.ok, submission.errors
    assert shop.settings.badge_labels == {"fr": {"backorder": "Bientôt : le {eta}"}}
    assert badge_labels.labels_for(shop, "fr") == {
        "in_stock": "En stock",
        "backorder": "Bientôt : le {eta}",
        "out_of_stock": "Épuisé",
    }
    submission, _changed = settings_form.save(
        db.session, shop, saved_form(shop, **{"badge_label-fr-backorder": ""})
    )
    assert submission.ok and shop.settings.badge_labels == {}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("badge_label-fr-backorder", "Expédié le {date}", "remove {date}"),
        ("badge_label-fr-backorder", "Expédié bientôt", "Include {eta}"),
        ("badge_label-fr-in_stock", "En stock le {eta}", "takes no placeholders"),
        ("badge_label-fr-out_of_stock", "É" * 81, "80 characters or fewer"),
        ("badge_label-fr-backorder", "{eta} " + "x" * 120, "120 characters or fewer"),
    ],
)
def test_a_bad_label_in_another_language_is_refused_next_to_its_field(
    app, client, key, value, message
):
    shop = bilingual_shop()
    response = client.post("/sandbox/settings", data=saved_form(shop, **{key: value}))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="{key}-error"' in page and message in page
    assert 'id="badge-labels-fr" open' in page  # the section with the error is open
    db.session.expire_all()
    assert shop.settings.badge_labels == {}  # nothing saved


# -- the badge API (BigCommerce script, sandbox page) -------------------------------------------


def french_product():
    shop = bilingual_shop()
    product, hooks = sandbox_store.create_product(
        db.session, shop, "Mug", [("Blue", "MUG-B", 5, "deny"), ("Red", "MUG-R", 0, "continue")]
    )
    db.session.commit()
    sandbox_store.deliver(shop, hooks)
    return shop, product


def test_the_badge_api_answers_in_the_page_language(app, client):
    _shop, product = french_product()
    blue, red = (str(v.id) for v in product.variants)
    url = f"/storefront/v1/badges?shop=demo.sandbox.local&product={product.id}"
    english = client.get(url).json["variants"]
    french = client.get(url + "&locale=fr-FR").json["variants"]
    assert english[blue]["label"] == "In stock"
    assert french[blue]["label"] == "En stock"
    eta = date.fromisoformat(french[red]["eta"])
    assert french[red]["eta_text"] == format_eta(eta, "fr")
    assert french[red]["label"] == f"En précommande, expédié d'ici le {format_eta(eta, 'fr')}"
    assert english[red]["label"] == f"Backorder, ships by {format_eta(eta)}"
    # A language the store does not publish gets the primary language, not an error.
    german = client.get(url + "&locale=de").json["variants"]
    assert german == english
    assert client.get(url + "&locale=<script>").json["variants"] == english


def test_the_merchants_own_french_label_reaches_the_badge_api(app, client):
    shop, product = french_product()
    form = saved_form(shop, **{"badge_label-fr-backorder": "Livré dès le {eta}"})
    assert settings_form.save(db.session, shop, form)[0].ok
    red = str(product.variants[1].id)
    url = f"/storefront/v1/badges?shop=demo.sandbox.local&variants={red}&locale=fr"
    badge = client.get(url).json["variants"][red]
    assert badge["label"] == f"Livré dès le {badge['eta_text']}"


# -- the Shopify theme block --------------------------------------------------------------------


def config(**colours) -> dict:
    return {
        "labels": {
            "en": dict(badge_labels.DEFAULTS["en"]),
            "fr": dict(badge_labels.DEFAULTS["fr"]),
        },
        "colours": {
            "in_stock": "#0a5c2b",
            "backorder": "#7a4d00",
            "out_of_stock": "#a40e26",
            **colours,
        },
        "default_language": "en",
    }


def test_the_theme_block_shows_a_french_shopper_the_french_label_and_date():
    variants = [
        variant(1, "backorder", "Backorder, ships by Thu, December 24, 2026", "2026-12-24"),
        variant(2, "in_stock", "In stock"),
    ]
    page = render(variants, shop_config=config(), locale="fr")
    label = page.split('backorder-badge__label">')[1].split("</span>")[0]
    assert html.unescape(label) == "En précommande, expédié d'ici le 24 décembre 2026"
    data_tag = page.split('data-backorder-badge-variants="632910392"')[1]
    data = json.loads(data_tag.split(">", 1)[1].split("<")[0])
    assert data["2"]["label"] == "En stock"
    assert data["1"]["eta"] == "2026-12-24"
    # A regional locale uses its language; one the store has no labels for, the default.
    assert "En stock" in render(variants, 1, shop_config=config(), locale="fr-CA")
    assert "In stock" in render(variants, 1, shop_config=config(), locale="ja")


def test_the_theme_block_uses_the_colours_chosen_in_the_settings():
    page = render([variant(1, "in_stock", "In stock")], shop_config=config(), locale="en")
    assert "--backorder-in-stock: #0a5c2b;" in page
    assert "--backorder-out-of-stock: #a40e26;" in page
    # Before the app pushed its configuration, the block's own colour settings apply.
    page = render([variant(1, "in_stock", "In stock")], locale="en")
    assert "--backorder-in-stock: #1a7f37;" in page


def test_the_theme_block_escapes_labels_from_the_metafield():
    evil = config()
    evil["labels"]["en"]["in_stock"] = '<img src=x onerror=alert(1)>"'
    evil["colours"]["in_stock"] = '"><script>alert(1)</script>'
    page = render([variant(1, "in_stock", "In stock")], shop_config=evil, locale="en")
    assert "<img" not in page and "<script>alert" not in page


# -- pushing the shop metafield -----------------------------------------------------------------


def validated(call) -> dict:
    body = sent(call)
    assert validate(load_schema(), parse(body["query"])) == []
    return body


@responses.activate
def test_the_storefront_config_is_pushed_to_the_shop_metafield(app):
    shop = factories.shopify_shop()
    shop.published_locales = ["en", "fr"]
    shop.settings.color_backorder = "#123456"
    shop.settings.badge_labels = {"fr": {"backorder": "Bientôt, le {eta}"}}
    db.session.commit()
    expected = badge_labels.storefront_config(shop)
    answer = {"shop": {"id": "gid://shopify/Shop/548380009", "metafield": None}}
    responses.post(ENDPOINT, json=gql_answer({**answer, "metafieldDefinitions": {"nodes": []}}))
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "metafieldDefinitionCreate": {
                    "createdDefinition": {"id": "gid://shopify/MetafieldDefinition/7", "key": "x"},
                    "userErrors": [],
                }
            }
        ),
    )
    responses.post(
        ENDPOINT, json=gql_answer({"metafieldsSet": {"metafields": [], "userErrors": []}})
    )

    connector_for(shop, db.session).push_storefront_config(expected)

    read, define, write = (validated(c) for c in responses.calls)
    assert operation_of(responses.calls[0]) == "BackorderStorefrontConfig"
    assert read["variables"] == {"namespace": "$app:backorder", "key": "storefront"}
    assert define["variables"]["definition"] == {
        "namespace": "$app:backorder",
        "key": "storefront",
        "ownerType": "SHOP",
        "name": "Backorder badge storefront",
        "type": "json",
        "access": {"admin": "MERCHANT_READ", "storefront": "PUBLIC_READ"},
    }
    (metafield,) = write["variables"]["metafields"]
    assert metafield["ownerId"] == "gid://shopify/Shop/548380009"
    assert (metafield["namespace"], metafield["key"], metafield["type"]) == (
        "$app:backorder",
        "storefront",
        "json",
    )
    value = json.loads(metafield["value"])
    assert value["colours"]["backorder"] == "#123456"
    assert value["labels"]["fr"]["backorder"] == "Bientôt, le {eta}"
    assert value["labels"]["fr"]["in_stock"] == "En stock"
    assert value["default_language"] == "en"

    # Already there and readable: only read.
    responses.calls.reset()
    nodes = [{"id": "gid://shopify/MetafieldDefinition/7", "key": "storefront"}]
    nodes[0]["access"] = {"storefront": "PUBLIC_READ"}
    answer["shop"]["metafield"] = {"jsonValue": value}
    responses.replace(
        responses.POST,
        ENDPOINT,
        json=gql_answer({**answer, "metafieldDefinitions": {"nodes": nodes}}),
    )
    connector_for(shop, db.session).push_storefront_config(expected)
    assert [operation_of(c) for c in responses.calls] == ["BackorderStorefrontConfig"]
