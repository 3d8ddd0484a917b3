"""The notify-me form's configuration reaches a Shopify product page without a request to the
app: it rides in the app-owned shop metafield (`$app:backorder.storefront`, its "notify" part),
written as Shopify documents `metafieldsSet`, and pushed again whenever a settings save changes
it (the theme extension renders it: tests/test_notify_me_browser_shopify.py).
"""

from __future__ import annotations

import json

import responses
from graphql import parse, validate

from plugin.extensions import db
from plugin.platforms import connector_for
from plugin.services import notify_me, settings_form
from plugin.services.notify_texts import DEFAULTS, MESSAGES, consent_version
from plugin.services.storefront_config import push_storefront
from tests import factories
from tests.shopify_webhook_helpers import ENDPOINT, gql_answer, operation_of, sent
from tests.test_shopify_graphql_schema import load_schema

SHOP_GID = "gid://shopify/Shop/548380009"


def validated(call) -> dict:
    body = sent(call)
    assert validate(load_schema(), parse(body["query"])) == []
    return body


def french_shop():
    shop = factories.shopify_shop()
    shop.name = "Fjord & Fell"
    shop.locale = "fr"
    shop.published_locales = ["fr", "en", "it"]
    shop.settings.notify_on_backorder = True
    shop.settings.notify_texts = {"fr": {"heading": "Dites-moi quand"}}
    db.session.commit()
    return shop


def test_the_form_config_holds_every_language_the_shop_publishes_and_the_app_words(app):
    shop = french_shop()
    notify = notify_me.storefront_form(shop)
    assert notify["enabled"] is True
    assert notify["show_on"] == ["out_of_stock", "backorder"]
    assert notify["default_language"] == "fr"
    assert set(notify["languages"]) == {"fr", "en"}  # Italian: the app has no wording
    fr = notify["languages"]["fr"]
    assert fr["texts"]["heading"] == "Dites-moi quand"
    assert fr["texts"]["consent"] == DEFAULTS["fr"]["consent"].replace("{shop}", "Fjord & Fell")
    assert fr["messages"] == MESSAGES["fr"]
    # Each language is what the app proxy's form endpoint answers for it, consent version
    # included (a sign-up sends it back and the app checks it).
    for language, words in notify["languages"].items():
        answer = notify_me.form_config(shop, language)
        assert words["consent_version"] == answer["consent_version"]
        assert words["consent_version"] == consent_version(words["texts"]["consent"])
        assert (words["texts"], words["messages"]) == (answer["texts"], answer["messages"])


@responses.activate
def test_the_form_config_is_written_to_the_shop_metafield_as_shopify_documents(app):
    shop = french_shop()
    nodes = [{"id": "gid://shopify/MetafieldDefinition/7", "key": "storefront"}]
    nodes[0]["access"] = {"admin": "MERCHANT_READ", "storefront": "PUBLIC_READ"}
    read = {"shop": {"id": SHOP_GID, "metafield": None}, "metafieldDefinitions": {"nodes": nodes}}
    responses.post(ENDPOINT, json=gql_answer(read))
    responses.post(
        ENDPOINT, json=gql_answer({"metafieldsSet": {"metafields": [], "userErrors": []}})
    )

    push_storefront(db.session, shop)

    assert [operation_of(c) for c in responses.calls] == [
        "BackorderStorefrontConfig",
        "BadgeMetafieldsSet",
    ]
    write = validated(responses.calls[1])
    (metafield,) = write["variables"]["metafields"]
    assert metafield["ownerId"] == SHOP_GID
    assert (metafield["namespace"], metafield["key"], metafield["type"]) == (
        "$app:backorder",
        "storefront",
        "json",
    )
    value = json.loads(metafield["value"])
    assert value["notify"] == notify_me.storefront_form(shop)
    assert value["notify"]["languages"]["fr"]["texts"]["heading"] == "Dites-moi quand"

    # The same configuration already there: read only, nothing written.
    responses.calls.reset()
    read["shop"]["metafield"] = {"jsonValue": value}
    responses.replace(responses.POST, ENDPOINT, json=gql_answer(read))
    connector_for(shop, db.session).push_storefront_config(value)
    assert [operation_of(c) for c in responses.calls] == ["BackorderStorefrontConfig"]


def saved_form(shop, **changes) -> dict:
    values = settings_form.form_values(shop)
    return {**{k: v for k, v in values.items() if isinstance(v, str)}, **changes}


def test_saving_the_notify_settings_schedules_the_metafield_write(app, monkeypatch):
    shop = french_shop()
    pushes: list[int] = []
    monkeypatch.setattr("plugin.services.storefront_config.schedule_storefront_push", pushes.append)

    form = saved_form(shop, **{"notify_text-fr-intro": "On vous écrit dès son retour."})
    submission, _ = settings_form.save(db.session, shop, form)
    assert submission.ok, submission.errors
    assert pushes == [shop.id]

    # Switching the form off on backorders changes what the page shows: pushed again.
    form = saved_form(shop, notify_on_backorder="", notify_enabled="on")
    form["notify_shown"] = "1"
    submission, _ = settings_form.save(db.session, shop, form)
    assert submission.ok, submission.errors
    assert shop.settings.notify_on_backorder is False
    assert pushes == [shop.id, shop.id]

    # A save that changes nothing the storefront shows pushes nothing.
    submission, _ = settings_form.save(db.session, shop, saved_form(shop))
    assert submission.ok, submission.errors
    assert pushes == [shop.id, shop.id]
