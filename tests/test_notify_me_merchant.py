"""Notify me, the merchant's settings: the form on or off, double opt-in (by the store's
country unless chosen), the alert pace and the wording per language, saved all or nothing on
the sandbox page and through the Shopify admin's JSON API."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from plugin.extensions import db
from plugin.models import StoreSettings
from plugin.services import notify_me, notify_policy, sandbox_store
from tests import factories
from tests.shopify_install_helpers import session_token

SHOPIFY = "notify-settings.myshopify.com"


def sandbox_shop():
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    return shop


def page_form(client) -> dict[str, str]:
    """The sandbox settings form as the browser would send it untouched (ticked boxes only)."""
    page = client.get("/sandbox/settings").get_data(as_text=True)
    form: dict[str, str] = {}
    for tag in re.findall(r"<input [^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or ('type="checkbox"' in tag and "checked" not in tag):
            continue
        value = re.search(r'value="([^"]*)"', tag)
        form[name.group(1)] = value.group(1) if value else "on"
    for name, body in re.findall(r'<textarea [^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', page):
        form[name] = body
    for name, options in re.findall(r'<select [^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        form[name] = chosen.group(1) if chosen else ""
    return form


def settings() -> StoreSettings:
    db.session.expire_all()
    return db.session.scalars(select(StoreSettings)).one()


def error_next_to(page: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{re.escape(field)}-error">([^<]*)</p>', page)
    assert found, f"no error shown next to {field}"
    return found.group(1)


def test_the_page_shows_the_notify_section_with_the_default_wording(client):
    sandbox_shop()
    page = client.get("/sandbox/settings").get_data(as_text=True)
    assert "Notify me when it&#39;s back" in page
    assert '<option value="auto" selected>Automatic (on for stores in the EU)</option>' in page
    # The sandbox store has no country: the merchant is told what automatic means for them.
    assert "Automatic means off, because your store&#39;s country is not known." in page
    assert "Now: double opt-in is off for this store" in page
    # Empty fields show the default wording as a placeholder, per language.
    assert 'placeholder="Notify me when it&#39;s back"' in page
    assert 'placeholder="Prévenez-moi du retour"' in page
    assert 'id="notify_rate_per_unit" name="notify_rate_per_unit" value="1"' in page
    assert 'id="notify_batch_minutes" name="notify_batch_minutes" value="15"' in page


def test_a_merchant_saves_the_notify_settings_and_shoppers_see_the_wording(client):
    shop = sandbox_shop()
    form = page_form(client)
    form.pop("notify_enabled")  # unticked: no form on the storefront
    form.update(
        notify_on_backorder="on",
        notify_show_stock="on",
        notify_double_opt_in="on",
        notify_rate_per_unit="3",
        notify_batch_minutes="60",
        **{
            "notify_text-fr-heading": "  Prévenez-moi chez {shop}  ",
            "notify_text-fr-consent": "J'accepte un e-mail de {shop}.",
        },
    )
    response = client.post("/sandbox/settings", data=form, follow_redirects=True)
    assert response.status_code == 200
    assert "Settings saved." in response.get_data(as_text=True)

    saved = settings()
    assert (saved.notify_enabled, saved.notify_on_backorder, saved.notify_show_stock) == (
        False,
        True,
        True,
    )
    assert (saved.notify_double_opt_in, saved.notify_rate_per_unit) == (True, 3)
    assert saved.notify_batch_minutes == 60
    assert saved.notify_texts == {
        "fr": {"heading": "Prévenez-moi chez {shop}", "consent": "J'accepte un e-mail de {shop}."}
    }
    page = client.get("/sandbox/settings").get_data(as_text=True)
    assert 'value="Prévenez-moi chez {shop}"' in page
    assert '<option value="on" selected>On</option>' in page
    assert "Now: double opt-in is on for this store</strong> (your choice)" in page

    # What a French shopper's form says: the merchant's words, the store's name filled in,
    # the defaults for what was left empty; off, since the merchant turned the form off.
    db.session.refresh(shop)
    config = notify_me.form_config(shop, "fr-FR")
    assert config["texts"]["heading"] == f"Prévenez-moi chez {shop.name or shop.domain}"
    assert config["texts"]["button"] == "Me prévenir"
    assert config["enabled"] is False and config["double_opt_in"] is True


def test_clearing_a_text_brings_back_the_default_and_other_texts_stay(client):
    sandbox_shop()
    form = page_form(client)
    form["notify_text-de-button"] = "Sagen Sie mir Bescheid"
    form["notify_text-es-heading"] = "¡Avísame!"
    client.post("/sandbox/settings", data=form)
    form = page_form(client)
    assert form["notify_text-de-button"] == "Sagen Sie mir Bescheid"
    form["notify_text-de-button"] = ""
    client.post("/sandbox/settings", data=form)
    assert settings().notify_texts == {"es": {"heading": "¡Avísame!"}}


@pytest.mark.parametrize(
    "field, typed, message",
    [
        ("notify_rate_per_unit", "0", "Alerts per unit must be between 1 and 100."),
        ("notify_rate_per_unit", "101", "Alerts per unit must be between 1 and 100."),
        ("notify_rate_per_unit", "2.5", "Alerts per unit must be a whole number from 1 to 100."),
        ("notify_rate_per_unit", "", "Alerts per unit is needed: a whole number from 1 to 100."),
        ("notify_batch_minutes", "1441", "The batch interval must be between 1 and 1440."),
        ("notify_batch_minutes", "9" * 5000, "The batch interval must be a whole number"),
        ("notify_batch_minutes", "-5", "The batch interval must be a whole number"),
        ("notify_double_opt_in", "maybe", "Choose automatic, on or off."),
        ("notify_text-en-heading", "x" * 121, "Keep it to 120 characters or fewer."),
        ("notify_text-fr-consent", "Merci {name} !", "remove {name}."),
        ("notify_text-de-intro", "Hallo {{ shop }}", "remove { shop }."),
        ("notify_text-es-button", "Avísame {", "Use braces only in {shop}."),
        ("notify_text-en-button", "Notify\x00me", "Remove the control characters."),
    ],
)
def test_bad_input_is_refused_next_to_the_field_and_nothing_is_saved(client, field, typed, message):
    sandbox_shop()
    form = page_form(client)
    form["notify_text-en-heading"] = "Tell me first"  # valid, but nothing is kept on an error
    form[field] = typed
    response = client.post("/sandbox/settings", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in error_next_to(page, field).replace("&#39;", "'")
    assert "Nothing was saved" in page
    saved = settings()
    assert (saved.notify_rate_per_unit, saved.notify_batch_minutes) == (1, 15)
    assert saved.notify_double_opt_in is None and saved.notify_texts == {}


def test_the_section_with_an_error_is_opened_and_keeps_what_was_typed(client):
    sandbox_shop()
    form = page_form(client)
    form["notify_text-de-heading"] = "Zurück bei {laden}"
    page = client.post("/sandbox/settings", data=form).get_data(as_text=True)
    assert re.search(r'<details class="notify-language" id="notify-texts-de"\s+open>', page)
    assert 'value="Zurück bei {laden}"' in page


@pytest.mark.parametrize(
    "country, chosen, applies, means",
    [
        ("FR", None, True, "on, because your store is in France (EU/EEA)"),
        ("no", None, True, "on, because your store is in Norway (EU/EEA)"),
        ("US", None, False, "off, because your store is in United States (outside the EU/EEA)"),
        (None, None, False, "off, because your store's country is not known"),
        ("US", True, True, "off, because your store is in United States (outside the EU/EEA)"),
        ("DE", False, False, "on, because your store is in Germany (EU/EEA)"),
    ],
)
def test_double_opt_in_follows_the_store_country_unless_the_merchant_chose(
    app, country, chosen, applies, means
):
    shop = factories.shopify_shop(SHOPIFY)
    shop.country = country
    shop.settings.notify_double_opt_in = chosen
    db.session.commit()
    assert notify_policy.double_opt_in_applies(shop) is applies
    assert notify_policy.view(shop).automatic_means == means


# -- the Shopify admin's JSON API ------------------------------------------------------------------


def bearer(shop: str = SHOPIFY) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(shop)}"}


def test_the_json_api_reads_and_saves_the_notify_settings(app, client):
    shop = factories.shopify_shop(SHOPIFY)
    shop.country = "IT"
    db.session.commit()
    answer = client.get("/shopify/api/settings", headers=bearer()).json
    values = answer["values"]
    assert values["notify_enabled"] == "on" and values["notify_double_opt_in"] == "auto"
    assert values["notify_text-fr-heading"] == ""  # the default wording is in use
    assert answer["notify_double_opt_in_applies"] is True
    assert answer["notify_double_opt_in_automatic_means"].startswith("on, because your store")

    changed = {
        **values,
        "notify_double_opt_in": False,
        "notify_rate_per_unit": 2,
        "notify_batch_minutes": 5,
        "notify_texts": {"fr": {"heading": "Bientôt chez {shop}"}},
    }
    response = client.post("/shopify/api/settings", json=changed, headers=bearer())
    assert response.status_code == 200, response.json
    saved = settings()
    assert (saved.notify_double_opt_in, saved.notify_rate_per_unit) == (False, 2)
    assert saved.notify_batch_minutes == 5
    assert saved.notify_texts == {"fr": {"heading": "Bientôt chez {shop}"}}
    after = client.get("/shopify/api/settings", headers=bearer()).json
    assert after["values"]["notify_text-fr-heading"] == "Bientôt chez {shop}"
    assert after["notify_double_opt_in_applies"] is False


def test_a_json_client_that_leaves_the_notify_fields_out_wipes_nothing(app, client):
    shop = factories.shopify_shop(SHOPIFY)
    shop.settings.notify_texts = {"de": {"button": "Bescheid geben"}}
    shop.settings.notify_on_backorder = True
    shop.settings.notify_rate_per_unit = 4
    db.session.commit()
    values = client.get("/shopify/api/settings", headers=bearer()).json["values"]
    older_client = {k: v for k, v in values.items() if not k.startswith("notify")}
    older_client["default_lead_days"] = "21"
    response = client.post("/shopify/api/settings", json=older_client, headers=bearer())
    assert response.status_code == 200, response.json
    saved = settings()
    assert saved.default_lead_days == 21
    assert saved.notify_texts == {"de": {"button": "Bescheid geben"}}
    assert (saved.notify_on_backorder, saved.notify_rate_per_unit) == (True, 4)

    # Texts are merged per language and field; null restores one default.
    more = {**older_client, "notify_texts": {"de": {"heading": "Bald da"}, "fr": {}}}
    client.post("/shopify/api/settings", json=more, headers=bearer())
    assert settings().notify_texts == {"de": {"button": "Bescheid geben", "heading": "Bald da"}}
    reset = {**older_client, "notify_texts": {"de": {"button": None}}}
    client.post("/shopify/api/settings", json=reset, headers=bearer())
    assert settings().notify_texts == {"de": {"heading": "Bald da"}}


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"notify_rate_per_unit": 10**30}, "notify_rate_per_unit"),
        ({"notify_rate_per_unit": -1}, "notify_rate_per_unit"),
        ({"notify_batch_minutes": "soon"}, "notify_batch_minutes"),
        ({"notify_double_opt_in": "sometimes"}, "notify_double_opt_in"),
        ({"notify_texts": {"fr": {"heading": "x" * 500}}}, "notify_text-fr-heading"),
        ({"notify_texts": {"fr": {"button": "Go {price}"}}}, "notify_text-fr-button"),
        ({"notify_texts": {"xx": {"heading": "Hi"}}}, "notify_texts"),
        ({"notify_texts": {"fr": {"footer": "Hi"}}}, "notify_texts"),
        ({"notify_texts": {"fr": {"heading": 5}}}, "notify_texts"),
        ({"notify_texts": ["fr"]}, "notify_texts"),
    ],
)
def test_the_json_api_refuses_bad_notify_input_with_the_field(app, client, payload, field):
    factories.shopify_shop(SHOPIFY)
    values = client.get("/shopify/api/settings", headers=bearer()).json["values"]
    response = client.post("/shopify/api/settings", json={**values, **payload}, headers=bearer())
    assert response.status_code == 422
    assert response.json["saved"] is False and field in response.json["errors"]
    saved = settings()
    assert (saved.notify_rate_per_unit, saved.notify_batch_minutes) == (1, 15)
    assert saved.notify_texts == {}


def test_the_embedded_pages_show_the_notify_section(app, client):
    from plugin.services import bigcommerce_session

    factories.bigcommerce_store("notifybc", owner=7)
    token = bigcommerce_session.issue(app.config["SECRET_KEY"], "notifybc", "7")
    page = client.get(f"/bigcommerce/app/notifybc?token={token}").get_data(as_text=True)
    assert 'id="notify-heading"' in page and 'name="notify_shown"' in page
    assert 'name="notify_text-es-consent"' in page
