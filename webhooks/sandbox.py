"""The sandbox store's webhooks: signed and shaped like Shopify's, so the same inbox, queue and
worker run for a local store as for a real one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import datetime

from plugin.models import WebhookEvent, utcnow
from plugin.settings import Settings
from webhooks import events as ev
from webhooks.source import (
    Delivery,
    ShopFinder,
    base64_hmac,
    check_signature,
    delivery_from_headers,
)

TOPICS = ("products/update", "inventory_levels/update", "orders/create", "app/uninstalled")
H_TOPIC = "X-Sandbox-Topic"
H_SHOP = "X-Sandbox-Shop-Domain"
H_EVENT = "X-Sandbox-Event-Id"
H_TRIGGERED = "X-Sandbox-Triggered-At"
H_HMAC = "X-Sandbox-Hmac-Sha256"


def signing_key(settings: Settings) -> bytes:
    """Derived from SECRET_KEY so a deployment has no extra secret to manage for the sandbox."""
    return hmac.new(settings.secret_key.encode(), b"sandbox-webhooks", hashlib.sha256).digest()


def sign(settings: Settings, body: bytes) -> str:
    return base64_hmac(signing_key(settings), body)


def build_delivery(
    settings: Settings,
    shop_domain: str,
    topic: str,
    payload: dict,
    *,
    event_id: str | None = None,
    triggered_at: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The exact bytes and headers the sandbox store POSTs for one event."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        H_TOPIC: topic,
        H_SHOP: shop_domain,
        H_EVENT: event_id or str(uuid.uuid4()),
        H_TRIGGERED: (triggered_at or utcnow()).isoformat(),
        H_HMAC: sign(settings, body),
    }
    return body, headers


class SandboxWebhooks:
    platform = "sandbox"

    def verify(
        self, body: bytes, headers: Mapping[str, str], settings: Settings, find_shop: ShopFinder
    ) -> Delivery:
        check_signature(headers.get(H_HMAC), sign(settings, body), "invalid webhook signature")
        return delivery_from_headers(
            headers, topic=H_TOPIC, shop=H_SHOP, event_ids=(H_EVENT,), triggered=H_TRIGGERED
        )

    def to_events(self, inbox: WebhookEvent) -> list[ev.AppEvent]:
        payload = json.loads(inbox.body)
        occurred_at = inbox.triggered_at or inbox.received_at or utcnow()
        match inbox.topic:
            case "products/update":
                return [ev.ProductChanged(str(payload["id"]), occurred_at, product_facts(payload))]
            case "inventory_levels/update":
                return [
                    ev.InventoryChanged(
                        variant=ev.VariantRef(variant_id=str(payload["variant_id"])),
                        location_id=str(payload.get("location_id") or "default"),
                        available=int(payload["available"]),
                        occurred_at=occurred_at,
                    )
                ]
            case "orders/create":
                return [
                    ev.OrderCreated(
                        order_id=str(payload["id"]),
                        # Like BigCommerce, a thin order payload leaves the lines to be fetched.
                        needs_fetch="line_items" not in payload,
                        order_name=str(payload.get("name") or ""),
                        customer_email=payload.get("email"),
                        occurred_at=occurred_at,
                        lines=tuple(
                            ev.OrderLine(
                                line_id=str(item["id"]),
                                variant=ev.VariantRef(variant_id=str(item["variant_id"])),
                                quantity=int(item["quantity"]),
                            )
                            for item in payload.get("line_items", [])
                            if item.get("variant_id") is not None
                        ),
                    )
                ]
            case "app/uninstalled":
                return [ev.AppUninstalled(occurred_at)]
        return []


def product_facts(payload: dict) -> ev.ProductFacts:
    return ev.ProductFacts(
        platform_id=str(payload["id"]),
        title=payload.get("title") or "",
        variants=tuple(
            ev.VariantFacts(
                platform_id=str(v["id"]),
                sku=v.get("sku") or "",
                title=v.get("title") or "",
                sells_past_zero=v.get("inventory_policy") == "continue",
                levels={"default": int(v.get("inventory_quantity") or 0)},
            )
            for v in payload.get("variants", [])
        ),
    )
