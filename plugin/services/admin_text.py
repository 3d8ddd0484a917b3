"""The merchant admin's words, in the language of the merchant reading them.

Services build some of what the admin shows (the Overview's sentences, a refused field's
message, what a save did). They stay free of Flask: they call `_()` and `ngettext()` from here,
and the app (`plugin.i18n`) hands this module, once, how to find the current request's
translations and locale (Flask-Babel's). Outside a request (a worker, a command, a test calling
a service directly) the words are English, as written in the source.

Messages are gettext message ids with `%(name)s` placeholders, extracted by `pybabel extract`
(see babel.cfg) into translations/. `N_()` only marks a message written where no request exists
yet (a module constant); translate it where it is shown, with `_(CONSTANT)`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from babel import Locale
from babel.dates import format_date, format_time
from babel.support import NullTranslations

from plugin.services.shop_time import shop_zone

ENGLISH = Locale("en")
_NULL = NullTranslations()


def _no_translations() -> NullTranslations:
    return _NULL


def _no_locale() -> Locale | None:
    return None


_translations: Callable[[], NullTranslations] = _no_translations
_locale: Callable[[], Locale | None] = _no_locale


def use(translations: Callable[[], NullTranslations], locale: Callable[[], Locale | None]) -> None:
    """Called once by the app: where the current request's translations and locale are."""
    global _translations, _locale
    _translations, _locale = translations, locale


def _(message: str, **params: object) -> str:
    text = _translations().gettext(message)
    return text % params if params else text


def ngettext(singular: str, plural: str, num: int, **params: object) -> str:
    """`num` is also available to the message as `%(num)s`."""
    text = _translations().ngettext(singular, plural, num)
    return text % {"num": num, **params}


def N_(message: str) -> str:
    return message


def locale() -> Locale:
    return _locale() or ENGLISH


def language() -> str:
    return locale().language


def moment(value: datetime | None, timezone: str | None) -> str | None:
    """A moment in the shop's zone, named ("CET"), as the reader's language writes it.
    English keeps the unambiguous "2026-11-30 14:05 CET"; French gives
    "30 nov. 2026 14:05 CET", German "30.11.2026 14:05 CET"."""
    if value is None:
        return None
    local = value.astimezone(shop_zone(timezone))
    chosen = locale()
    if chosen.language == "en":
        return local.strftime("%Y-%m-%d %H:%M %Z")
    day = format_date(local.date(), "medium", locale=chosen)
    clock = format_time(local, "HH:mm", locale=chosen)
    return f"{day} {clock} {local.strftime('%Z')}"
