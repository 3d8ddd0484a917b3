"""What each platform's webhook module provides to the app's one receiving pipeline.

A source verifies a delivery on its raw body and, later, translates the stored delivery into the
app's own events. It reads no database and calls no platform: the app builds each source with
its secrets, and hands `verify` a lookup for a store's own webhook secret and `to_events` the
few store facts a translation needs (`StoreContext`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from domain.events import AppEvent


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


@dataclass(frozen=True)
class StoredDelivery:
    """A verified delivery as the app's inbox kept it."""

    topic: str
    body: bytes
    received_at: datetime
    triggered_at: datetime | None = None


@dataclass(frozen=True)
class StoreContext:
    """What the app knows of the store that a translation needs."""

    # Every stock location the store has reported; empty if none yet.
    location_ids: tuple[str, ...] = ()
    # The store keeps its own backorder counts, which move with stock.
    native_backorders: bool = False
    # The store's name on the platform (Shopify's myshopify domain), for links into its admin;
    # empty when the app does not say.
    shop_domain: str = ""


# Store's name on the platform → the plain webhook secret the app registered for it, if any.
SecretLookup = Callable[[str], str | None]


class WebhookSource(Protocol):
    platform: str
    # Headers worth keeping with a stored delivery, for support and replay (never signatures).
    kept_header_prefixes: tuple[str, ...]

    def verify(
        self, body: bytes, headers: Mapping[str, str], store_secret: SecretLookup
    ) -> Delivery:
        """Check the signature on the raw body; raise WebhookRefused if it does not hold."""

    def to_events(self, delivery: StoredDelivery, store: StoreContext) -> list[AppEvent]:
        """The app's own events for a stored delivery; [] for topics the app does not act on."""


def kept_headers(headers: Mapping[str, str], prefixes: tuple[str, ...]) -> dict[str, str]:
    """The delivery's headers worth keeping: the platform's own and the content type, never a
    signature, HMAC or secret."""
    return {
        k: v
        for k, v in headers.items()
        if k.lower().startswith((*prefixes, "content-type"))
        and "hmac" not in k.lower()
        and "signature" not in k.lower()
        and "secret" not in k.lower()
    }


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


def base64_hmac(key: bytes, body: bytes) -> str:
    """Base64 HMAC-SHA256 of the raw body: how Shopify (and the sandbox) sign a delivery."""
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def check_signature(given: str | None, expected: str, refusal: str) -> None:
    """Constant-time; an empty or missing signature is refused like a wrong one."""
    given = (given or "").strip()
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookRefused(refusal, status=401)


def delivery_from_headers(
    headers: Mapping[str, str],
    *,
    topic: str,
    shop: str,
    event_ids: tuple[str, ...],
    triggered: str,
) -> Delivery:
    """A Delivery read from Shopify-style headers; the first event-id header present wins."""

    def get(name: str) -> str:
        return (headers.get(name) or "").strip()

    event_id = next((get(name) for name in event_ids if get(name)), "")
    delivery = Delivery(
        shop_domain=get(shop).lower(),
        topic=get(topic),
        event_id=event_id,
        triggered_at=parse_timestamp(headers.get(triggered)),
    )
    if not delivery.topic or not delivery.shop_domain or not delivery.event_id:
        raise WebhookRefused(f"missing {topic}, {shop} or {event_ids[0]}", status=400)
    return delivery
