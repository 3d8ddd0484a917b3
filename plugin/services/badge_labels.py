"""Badge labels in each language the store publishes, with default wording in four languages.

The primary language's labels stay in the three label columns of StoreSettings (what the badge
engine renders and pushes); the other languages' live in StoreSettings.badge_labels as
{"fr": {"backorder": "…"}}, holding only what the merchant worded: an empty field means the
default wording, so a later rewording of a default reaches every store that kept it.
The storefront picks the shopper's language from these (a theme block through the
shop metafield, the badge API through its `locale=` parameter).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from plugin.models import Shop, StoreSettings
from plugin.services.admin_text import _

KINDS = ("in_stock", "backorder", "out_of_stock")
# The column lengths of the primary language's labels (StoreSettings.label_*).
LIMITS = {"in_stock": 80, "backorder": 120, "out_of_stock": 80}
KIND_TITLES = {
    "in_stock": "In-stock label",
    "backorder": "Backorder label ({eta} is replaced by the date)",
    "out_of_stock": "Out-of-stock label",
}
# The languages the app has wording for; any other published language starts from the
# primary language's labels until the merchant words it.
NAMES = {"en": "English", "fr": "Français", "de": "Deutsch", "es": "Español"}
DEFAULTS = {
    "en": {
        "in_stock": "In stock",
        "backorder": "Backorder, ships by {eta}",
        "out_of_stock": "Out of stock",
    },
    "fr": {
        "in_stock": "En stock",
        "backorder": "En précommande, expédié d'ici le {eta}",
        "out_of_stock": "Épuisé",
    },
    "de": {
        "in_stock": "Auf Lager",
        "backorder": "Nachbestellbar, Versand bis {eta}",
        "out_of_stock": "Ausverkauft",
    },
    "es": {
        "in_stock": "En stock",
        "backorder": "Bajo pedido, se envía antes del {eta}",
        "out_of_stock": "Agotado",
    },
}
# A language as platforms spell it: "fr", "pt-BR", "zh-Hant-TW", "de_DE".
LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,2}$")
# Beyond this many languages a store is not a store but a probe: the rest are ignored.
MAX_LANGUAGES = 30
FIELD = re.compile(r"^badge_label-([a-z]{2,3})-(in_stock|backorder|out_of_stock)$")
SHOWN = "badge_languages_shown"


def language_of(locale: str | None) -> str | None:
    """The language part of a locale ("fr-CA" -> "fr"), or None for anything else."""
    text = str(locale or "").strip()
    if not LOCALE.match(text):
        return None
    return re.split(r"[-_]", text, maxsplit=1)[0].lower()


def field_key(language: str, kind: str) -> str:
    return f"badge_label-{language}-{kind}"


def shop_languages(shop: Shop) -> list[str]:
    """The store's published languages, primary first (read from the platform), or its one
    language where the platform named none."""
    found: list[str] = []
    for locale in [*(shop.published_locales or []), shop.locale or "en"]:
        language = language_of(locale)
        if language and language not in found:
            found.append(language)
    return found[:MAX_LANGUAGES]


def primary_language(shop: Shop) -> str:
    return shop_languages(shop)[0]


def primary_labels(settings: StoreSettings) -> dict[str, str]:
    return {kind: getattr(settings, f"label_{kind}") for kind in KINDS}


def default_labels(language: str, primary: dict[str, str]) -> dict[str, str]:
    """The wording a language shows until the merchant words it."""
    return dict(DEFAULTS.get(language) or primary)


def labels_for(shop: Shop, language: str | None) -> dict[str, str] | None:
    """The labels shoppers in `language` see, or None if the store does not publish it."""
    languages = shop_languages(shop)
    if language not in languages:
        return None
    settings = shop.settings
    primary = primary_labels(settings)
    if language == languages[0]:
        return primary
    own = (settings.badge_labels or {}).get(language)
    own = own if isinstance(own, dict) else {}
    defaults = default_labels(language, primary)
    return {
        kind: own[kind] if isinstance(own.get(kind), str) and own[kind] else defaults[kind]
        for kind in KINDS
    }


def all_labels(shop: Shop) -> dict[str, dict[str, str]]:
    return {language: labels_for(shop, language) or {} for language in shop_languages(shop)}


def storefront_config(shop: Shop) -> dict:
    """What a theme block reads from the shop metafield: the labels per language,
    the colours chosen in the settings, the language to fall back on, and the notify-me
    form's configuration (so the product page asks the app nothing before a sign-up)."""
    from plugin.services.notify_me import storefront_form

    settings = shop.settings
    return {
        "labels": all_labels(shop),
        "colours": {kind: getattr(settings, f"color_{kind}") for kind in KINDS},
        "default_language": primary_language(shop),
        "notify": storefront_form(shop),
    }


def text_error(kind: str, value: str) -> str | None:
    """Why a label in another language cannot be saved: the same rules as the primary's."""
    from plugin.services.settings_form import label_error

    if len(value) > LIMITS[kind]:
        return _("Keep it to %(max)s characters or fewer.", max=LIMITS[kind])
    if problem := label_error(f"label_{kind}", value):
        return problem
    if kind == "backorder" and "{eta}" not in value:
        return _("Include {eta} where the ship-by date should appear.")
    return None


def parse(form: Mapping[str, object], errors: dict[str, str]) -> dict[tuple[str, str], str]:
    """The labels in other languages the form sent: {(language, kind): text}, "" restoring
    the default wording. Fields left out stay as they were."""
    changes: dict[tuple[str, str], str] = {}
    for key in list(form)[:2000]:
        match = FIELD.match(str(key))
        if not match:
            continue
        if len({language for language, _ in changes}) >= MAX_LANGUAGES:
            break
        language, kind = match.groups()
        value = " ".join(str(form.get(key) or "").split())
        if value and (problem := text_error(kind, value)):
            errors[key] = problem
        changes[(language, kind)] = value
    return changes


def apply(shop: Shop, changes: dict[tuple[str, str], str]) -> None:
    """Merge the changes into the saved labels (a new dict, so the JSON column is rewritten).
    Only the store's other published languages are kept; a text equal to the default is not."""
    if not changes:
        return
    settings = shop.settings
    languages = shop_languages(shop)[1:]
    primary = primary_labels(settings)
    saved = {
        language: dict(kinds)
        for language, kinds in (settings.badge_labels or {}).items()
        if language in languages and isinstance(kinds, dict)
    }
    for (language, kind), value in changes.items():
        if language not in languages:
            continue
        own = saved.setdefault(language, {})
        if value and value != default_labels(language, primary)[kind]:
            own[kind] = value
        else:
            own.pop(kind, None)
    settings.badge_labels = {language: kinds for language, kinds in saved.items() if kinds}


def sections(languages: list[str], primary: Mapping[str, object]) -> list[dict]:
    """The form's sections for the other languages: name and default wording of each."""
    fallback = {kind: str(primary.get(f"label_{kind}") or "") for kind in KINDS}
    return [
        {
            "code": language,
            "name": NAMES.get(language, language),
            "defaults": default_labels(language, fallback),
        }
        for language in languages
        if language in NAMES or LOCALE.match(language)
    ][:MAX_LANGUAGES]


def form_values(shop: Shop) -> dict[str, object]:
    """The other languages' labels as the form shows them ("" where the default applies),
    and the sections the form draws (kept in the values so a refused form shows them again)."""
    settings = shop.settings
    others = shop_languages(shop)[1:]
    values: dict[str, object] = {SHOWN: ",".join(others)}
    for language in others:
        own = (settings.badge_labels or {}).get(language)
        own = own if isinstance(own, dict) else {}
        for kind in KINDS:
            value = own.get(kind)
            values[field_key(language, kind)] = value if isinstance(value, str) else ""
    values["badge_label_sections"] = sections(others, values | primary_labels_form(settings))
    return values


def primary_labels_form(settings: StoreSettings) -> dict[str, str]:
    return {f"label_{kind}": getattr(settings, f"label_{kind}") for kind in KINDS}


def submitted_sections(form: Mapping[str, object]) -> list[dict]:
    """The sections a refused form showed, from the languages it said it showed."""
    shown = [language_of(code) for code in str(form.get(SHOWN) or "").split(",")]
    return sections([code for code in shown if code][:MAX_LANGUAGES], form)
