"""The days a store ships nothing: weekends, its country's public holidays, and the dates the
merchant closed. Business-day lead times skip them."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays

from plugin.models import Shop


@lru_cache(maxsize=512)
def public_holidays(country: str, year: int) -> frozenset[date]:
    """The country's national public holidays in `year`; none for a country `holidays` lacks."""
    try:
        calendar = holidays.country_holidays(country.upper(), years=year)
    except NotImplementedError:
        return frozenset()
    return frozenset(calendar)


def merchant_closed_dates(values) -> frozenset[date]:
    found = set()
    for value in values or ():
        try:
            found.add(date.fromisoformat(str(value)))
        except ValueError:
            continue  # validated when saved; an old odd value is simply not a closed day
    return frozenset(found)


def closed_dates(shop: Shop, today: date) -> frozenset[date]:
    """Every closed date a lead time starting today can meet (lead times stop at a year)."""
    closed = set(merchant_closed_dates(shop.settings.closed_dates if shop.settings else ()))
    if shop.country:
        for year in (today.year, today.year + 1, today.year + 2):
            closed |= public_holidays(shop.country, year)
    return frozenset(closed)
