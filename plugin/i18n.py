"""The merchant admin in the merchant's language (Flask-Babel).

Four languages have words: those of the customer mails (`mail_templates.LANGUAGES`: en, the
source, fr, de, es), picked with the same `choose_locale` (fr-CA → fr). Where the language comes
from, first that applies:

1. what the platform said about the user, carried signed by the app (BigCommerce: the `load`
   payload's `user.locale`, kept in the app token; the blueprint calls `use_platform_locale`);
2. `?locale=` (Shopify opens the app with `locale=fr`; its pages keep it on their links);
3. `?lang=` (the sandbox admin);
4. the browser's Accept-Language;
5. English.

Nothing typed reaches a template raw: every source is matched against the four languages.
Services get the same words through `plugin.services.admin_text`, which knows no Flask.
"""

from __future__ import annotations

from flask import Flask, has_request_context, request
from flask_babel import Babel, get_locale, get_translations, refresh

from plugin import ROOT
from plugin.services import admin_text
from plugin.services.mail_templates import LANGUAGES, choose_locale

TRANSLATIONS = ROOT / "translations"
PLATFORM_LOCALE = "backorder_badges.admin_locale"

babel = Babel()


def pick(tag: str | None) -> str | None:
    """A locale tag as Flask-Babel takes it ("fr_CA"), or None when none of the four
    languages matches."""
    if not tag:
        return None
    language, locale = choose_locale(str(tag))
    if language == "en" and not str(tag).lower().startswith("en"):
        return None
    return str(locale)


def query_language(name: str) -> str | None:
    """The language a query argument asks for ("es"), when it is one of the four."""
    chosen = pick(request.args.get(name))
    return chosen.split("_")[0] if chosen else None


def use_platform_locale(tag: str | None) -> None:
    """The locale the platform gave for this user (already checked), for this request."""
    if tag:
        request.environ[PLATFORM_LOCALE] = tag
        refresh()


def select_locale() -> str:
    if not has_request_context():  # a worker or a command: mails choose their own language
        return "en"
    from_platform = request.environ.get(PLATFORM_LOCALE)
    for candidate in (from_platform, request.args.get("locale"), request.args.get("lang")):
        chosen = pick(candidate)
        if chosen:
            return chosen
    return request.accept_languages.best_match(list(LANGUAGES)) or "en"


def html_lang() -> str:
    locale = get_locale()
    return locale.language if locale is not None and locale.language in LANGUAGES else "en"


def init_app(app: Flask) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    app.config["BABEL_DEFAULT_LOCALE"] = "en"
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["html_lang"] = html_lang
    app.jinja_env.filters["admin_moment"] = admin_text.moment
    # A request dispatched inside another (the sandbox's in-process webhooks), or a test's
    # outer app context, shares `g`: each request picks its own locale afresh.
    app.before_request(refresh)
    app.teardown_request(lambda _exc: refresh())
    admin_text.use(get_translations, get_locale)
