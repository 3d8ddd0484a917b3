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
import json
import re
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


class MalformedPayload(WebhookRefused):
    """Signed, but not a delivery the app could ever process (not JSON, a field of the wrong
    type or missing): a 400 at the door, nothing stored, so it is never retried."""

    def __init__(self, message: str):
        super().__init__(message, status=400)


# What a translation raises on a payload that can never be processed (as opposed to a store
# that cannot be reached): such a stored delivery goes to the dead letter state, not retried.
UNTRANSLATABLE = (
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    IndexError,
    OverflowError,
    RecursionError,
)

# Column sizes of the inbox (plugin/models/webhook.py), checked before any database sees them.
MAX_SHOP = 255
MAX_TOPIC = 128
MAX_EVENT_ID = 255


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
    # Kept headers (lower case) that carry the platform's own event id, shown on support pages
    # when the inbox keys deliveries by something else; () when the inbox key is that id.
    event_id_headers: tuple[str, ...]

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


_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")


def checked_text(value: object, name: str, max_length: int) -> str:
    """A header or payload field bound for an inbox column: text, at most `max_length`
    characters, no NUL or other control characters; else a 400 before the database."""
    if not isinstance(value, str):
        raise MalformedPayload(f"{name} must be text")
    if len(value) > max_length:
        raise MalformedPayload(f"{name} is longer than {max_length} characters")
    if _CONTROL_CHARACTER.search(value):
        raise MalformedPayload(f"{name} contains control characters")
    return value


MAX_PLATFORM_ID = 64


def platform_id(value: object) -> str:
    """A platform's id from a payload, as the app keeps it (text, at most 64 characters);
    TypeError or ValueError, like any other untranslatable payload, when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"an id must be a number or text, not {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_PLATFORM_ID or _CONTROL_CHARACTER.search(text):
        raise ValueError("an id longer than 64 characters or with control characters")
    return text


def json_object(body: bytes) -> dict:
    """The signed body as a JSON object, or MalformedPayload (not JSON, nested too deep to
    parse, or not an object)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedPayload("body is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedPayload("body is not a JSON object")
    return payload


def body_digest(body: bytes) -> str:
    """An id for a delivery taken from its signed bytes: the same body is the same event."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def parse_timestamp(value: object) -> datetime | None:
    """ISO 8601 from a header or payload, as an aware UTC datetime; None if absent, garbled or
    outside what UTC can hold (year 9999 at -14:00)."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def signed_time(payload: object, key: str = "updated_at") -> datetime | None:
    """When the resource changed, from the signed payload (its `updated_at`); None if it does
    not say. Preferred to any delivery header, which the signature does not cover."""
    if not isinstance(payload, dict):
        return None
    return parse_timestamp(payload.get(key))


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
        shop_domain=checked_text(get(shop).lower(), shop, MAX_SHOP),
        topic=checked_text(get(topic), topic, MAX_TOPIC),
        event_id=checked_text(event_id, event_ids[0], MAX_EVENT_ID),
        triggered_at=parse_timestamp(headers.get(triggered)),
    )
    if not delivery.topic or not delivery.shop_domain or not delivery.event_id:
        raise WebhookRefused(f"missing {topic}, {shop} or {event_ids[0]}", status=400)
    return delivery
