"""Dates as the shop's customers see them: the shop's own timezone, not the server's."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugin.models.base import utcnow


def shop_zone(timezone: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def shop_today(timezone: str | None, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(shop_zone(timezone)).date()


def format_eta(eta: date | None) -> str:
    """Unambiguous in every English-speaking market: "Tue, December 1, 2026"."""
    if eta is None:
        return ""
    return f"{eta:%a}, {eta:%B} {eta.day}, {eta.year}"
