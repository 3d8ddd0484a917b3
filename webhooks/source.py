"""What each platform's webhook module provides to the one receiving pipeline."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from plugin.models import Shop, WebhookEvent
from plugin.settings import Settings
from webhooks.events import AppEvent


class WebhookRefused(Exception):
    """Verification failed: answered with `status` (401 for a bad signature) and nothing stored."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Delivery:
    shop_domain: str
    topic: str
    # The platform's unique id for the event (a second delivery of it is a duplicate).
    event_id: str
    triggered_at: datetime | None


ShopFinder = Callable[[str], Shop | None]


class WebhookSource(Protocol):
    platform: str

    def verify(
        self, body: bytes, headers: Mapping[str, str], settings: Settings, find_shop: ShopFinder
    ) -> Delivery:
        """Check the signature on the raw body; raise WebhookRefused if it does not hold."""

    def to_events(self, inbox: WebhookEvent) -> list[AppEvent]:
        """The app's own events for a stored delivery; [] for topics the app does not act on."""


def parse_timestamp(value: str | None) -> datetime | None:
    """ISO 8601 from a header or payload, as an aware UTC datetime; None if absent or garbled."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
