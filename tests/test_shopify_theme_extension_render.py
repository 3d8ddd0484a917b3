"""The badge snippet rendered with Liquid: what a shopper's browser receives.

python-liquid stands in for Shopify's renderer, with Shopify's `json` (HTML-safe, as Shopify's
Rails-based encoder), `t` (the extension's locale file) and locale-aware `date: format: 'date'`
(Babel's long date in the storefront's locale, as Shopify writes "December 24, 2026" and
"24 décembre 2026") filters added.
"""

from __future__ import annotations

import html
import json
import re
from datetime import date

from babel.dates import format_date
from liquid import CachingFileSystemLoader, Environment

from plugin import ROOT

EXTENSION = ROOT / "extensions" / "backorder-badge"
EVIL = '<script>alert("x")</script> & "Ships" soon'


def _json(value) -> str:
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _t(key: str) -> str:
    node = json.loads((EXTENSION / "locales" / "en.default.json").read_text())
    for part in key.split("."):
        node = node[part]
    return node


def _date_for(locale: str):
    def date_filter(value, *args, format=None):
        if format != "date":
            raise NotImplementedError("only the locale-aware 'date' format is used")
        day = date.fromisoformat(str(value))
        return format_date(day, "long", locale=locale.replace("-", "_"))

    return date_filter


def render(
    variants: list[dict],
    selected: int = 0,
    *,
    shop_config: dict | None = None,
    locale: str = "en",
    **settings,
) -> str:
    env = Environment(loader=CachingFileSystemLoader(EXTENSION / "snippets", ext=".liquid"))
    env.filters["json"] = _json
    env.filters["t"] = _t
    env.filters["date"] = _date_for(locale)
    block = {
        "shopify_attributes": "",
        "settings": {
            "show_in_stock": True,
            "color_in_stock": "#1a7f37",
            "color_backorder": "#9a6700",
            "color_out_of_stock": "#cf222e",
            **settings,
        },
    }
    product = {"id": 632910392, "variants": variants}
    template = env.from_string(
        "{% render 'backorder-badge', product: product, current: current, block: block %}"
    )
    # The app-owned shop metafield (`$app:backorder.storefront`, type json) and the shopper's
    # locale as Shopify's `request.locale` gives them.
    shop = {"metafields": {"$app:backorder": {}}}
    if shop_config is not None:
        shop["metafields"]["$app:backorder"]["storefront"] = {"value": shop_config}
    return template.render(
        product=product,
        current=variants[selected],
        block=block,
        shop=shop,
        request={"locale": {"iso_code": locale}},
    )


def variant(variant_id: int, state: str | None, label: str = "", eta: str | None = None):
    fields = {}
    if state is not None:
        fields = {"state": {"value": state}, "label": {"value": label}}
        if eta:
            fields["eta"] = {"value": eta}
    return {"id": variant_id, "metafields": {"$app:backorder": fields}}


def badge_of(page: str) -> str:
    return re.search(r"<div\s+class=\"backorder-badge\".*?</div>", page, re.S).group(0)


def variants_json(page: str) -> dict:
    script = re.search(r'<script\s+type="application/json"[^>]*>(.*?)</script>', page, re.S)
    return json.loads(script.group(1))


def test_selected_variant_badge_is_text_with_its_eta():
    page = render(
        [
            variant(
                808950810, "backorder", "Backorder, ships by Thu, December 24, 2026", "2026-12-24"
            ),
            variant(49148385, "in_stock", "In stock"),
        ]
    )
    badge = badge_of(page)
    assert 'data-state="backorder"' in badge
    assert 'role="status"' in badge and 'aria-live="polite"' in badge
    assert "Availability:" in badge
    assert ">Backorder, ships by Thu, December 24, 2026<" in badge
    assert " hidden" not in badge
    assert variants_json(page) == {
        "808950810": {
            "state": "backorder",
            "label": "Backorder, ships by Thu, December 24, 2026",
            "eta": "2026-12-24",
        },
        "49148385": {"state": "in_stock", "label": "In stock", "eta": ""},
    }


def test_labels_are_escaped_in_the_badge_and_in_the_variant_data():
    page = render([variant(1, "backorder", EVIL), variant(2, "out_of_stock", "Out of stock")])
    assert "<script>alert" not in page
    label = re.search(r'backorder-badge__label">(.*?)</span>', page).group(1)
    assert html.unescape(label) == EVIL
    assert page.count("</script>") == 1  # the data script cannot be closed early
    assert variants_json(page)["1"]["label"] == EVIL


def test_variants_without_a_badge_or_switched_off_render_hidden():
    for variants, settings in (
        ([variant(1, None)], {}),
        ([variant(1, "hidden", "Backorder")], {}),
        ([variant(1, "in_stock", "In stock")], {"show_in_stock": False}),
    ):
        badge = badge_of(render(variants, **settings))
        assert re.search(r"\shidden\s*>", badge), badge


# --- the notify-me form's configuration, from the same shop metafield ------------------------


def render_notify(
    notify: dict | None, locale: str, state: str | None = None, form: str = "shopify_block"
) -> str:
    env = Environment(loader=CachingFileSystemLoader(EXTENSION / "snippets", ext=".liquid"))
    env.filters["json"] = _json
    env.filters["t"] = _t
    env.filters["asset_url"] = lambda asset: "https://cdn.shopify.test/" + asset
    shop = {"metafields": {"$app:backorder": {}}}
    if notify is not None:
        shop["metafields"]["$app:backorder"]["storefront"] = {"value": {"notify": notify}}
    selected = variant(1, state) if state else None
    return env.from_string(
        "{% render 'notify-me', product: product, block: block, form: form %}"
    ).render(
        form=form,
        product={"id": 632910392, "selected_or_first_available_variant": selected},
        block={"id": "b1", "settings": {}},
        shop=shop,
        request={"locale": {"iso_code": locale}},
    )


def notify_config(page: str) -> dict | None:
    found = re.search(r"<script\s+type=\"application/json\"[^>]*>(.*?)</script>", page, re.S)
    return json.loads(found.group(1)) if found else None


def test_the_notify_form_config_is_in_the_page_in_the_shoppers_language():
    def words(language: str, heading: str) -> dict:
        return {
            "consent_version": f"v-{language}",
            "texts": {"heading": heading, "consent": EVIL},
            "messages": {"subscribed": f"ok {language}"},
        }

    notify = {
        "enabled": True,
        "show_on": ["out_of_stock"],
        "double_opt_in": False,
        "default_language": "de",
        "languages": {"fr": words("fr", "Prévenez-moi"), "de": words("de", "Bescheid")},
    }
    for locale, language in (("fr", "fr"), ("fr-CA", "fr"), ("it", "de"), ("EN", "de")):
        page = render_notify(notify, locale)
        assert notify_config(page) == {
            "enabled": True,
            "show_on": ["out_of_stock"],
            "double_opt_in": False,
            "locale": language,
            **notify["languages"][language],
        }, locale
        # The merchant's words cannot close the script early; the form renders hidden.
        assert "<script>alert" not in page
        assert re.search(r"data-backorder-notify[^>]*\shidden\s*>", page, re.S)

    # The block's form for a selected variant the shop offers it on shows from the start,
    # worded in the shopper's language (escaped); the embed's waits to be placed.
    page = render_notify(notify, "fr-CA", "out_of_stock")
    widget = re.search(r"<div\s+class=\"bb-notify\".*?>", page, re.S).group(0)
    assert " hidden" not in widget and 'lang="fr"' in widget
    assert re.search(r'data-notify-text="heading">\s*Prévenez-moi\s*<', page)
    label = re.search(r'data-notify-text="consent">(.*?)</label>', page, re.S).group(1)
    assert html.unescape(label.strip()) == EVIL
    assert "<script>alert" not in page
    for state, form in (("backorder", "shopify_block"), ("out_of_stock", "shopify_embed")):
        widget = re.search(
            r"<div\s+class=\"bb-notify\".*?>", render_notify(notify, "fr", state, form), re.S
        )
        assert re.search(r"\shidden\s*>", widget.group(0)), (state, form)

    # Not pushed yet: no configuration in the page (the script keeps the form hidden).
    page = render_notify(None, "fr", "out_of_stock")
    assert notify_config(page) is None
    assert re.search(r"data-backorder-notify[^>]*\shidden\s*>", page, re.S)
    assert "Notify me when it" in page  # the locale file's words until then
