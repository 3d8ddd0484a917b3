"""Dates as the shop's customers see them: the shop's own timezone, not the server's."""

from __future__ import annotations

import functools
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton

from plugin.models.base import utcnow


def shop_zone(timezone: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def shop_today(timezone: str | None, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(shop_zone(timezone)).date()


def format_eta(eta: date | None, locale: str | None = None) -> str:
    """The ship-by date as shoppers of `locale` write it, with the weekday and the month in
    words so it reads the same everywhere ("Tue, December 1, 2026", "mar. 1 décembre 2026").
    Without a locale (or with one Babel does not know) it is the English form."""
    if eta is None:
        return ""
    return _format_eta(eta, locale)


@functools.lru_cache(maxsize=4096)
def _format_eta(eta: date, locale: str | None) -> str:
    """Cached: the badge API and the worker format the same few dates over and over, and
    Babel's formatting is the dearest part of a badge answer."""
    if locale:
        try:
            return format_skeleton(
                "yMMMMEd", eta, locale=Locale.parse(locale.replace("_", "-"), sep="-")
            )
        except (UnknownLocaleError, ValueError, TypeError):
            pass
    return f"{eta:%a}, {eta:%B} {eta.day}, {eta.year}"
