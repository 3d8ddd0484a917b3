"""The sandbox store's webhooks: signed and shaped like Shopify's, so the same inbox, queue and
worker run for a local store as for a real one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from domain import events as ev
from webhooks.source import (
    UNTRANSLATABLE,
    Delivery,
    MalformedPayload,
    SecretLookup,
    StoreContext,
    StoredDelivery,
    base64_hmac,
    check_signature,
    delivery_from_headers,
    json_object,
    platform_id,
)

# Order topics whose payload is the whole order, as Shopify's REST order resource.
ORDER_TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
)
TOPICS = (
    "products/update",
    "inventory_levels/update",
    *ORDER_TOPICS,
    # Shopify's order_edit and refund resources: they name the order, the app reads it.
    "orders/edited",
    "refunds/create",
    "app/uninstalled",
)
# The sandbox store has one stock location.
LOCATION = "default"
# Where the merchant opens an order in the sandbox store's admin.
ORDER_ADMIN_PATH = "/sandbox/#order-{id}"
H_TOPIC = "X-Sandbox-Topic"
H_SHOP = "X-Sandbox-Shop-Domain"
H_EVENT = "X-Sandbox-Event-Id"
H_TRIGGERED = "X-Sandbox-Triggered-At"
H_HMAC = "X-Sandbox-Hmac-Sha256"


def signing_key(secret_key: str) -> bytes:
    """Derived from SECRET_KEY so a deployment has no extra secret to manage for the sandbox."""
    return hmac.new(secret_key.encode(), b"sandbox-webhooks", hashlib.sha256).digest()


def sign(secret_key: str, body: bytes) -> str:
    return base64_hmac(signing_key(secret_key), body)


def build_delivery(
    secret_key: str,
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
        H_TRIGGERED: (triggered_at or datetime.now(UTC)).isoformat(),
        H_HMAC: sign(secret_key, body),
    }
    return body, headers


class SandboxWebhooks:
    platform = "sandbox"
    kept_header_prefixes = ("x-sandbox-",)
    event_id_headers: tuple[str, ...] = ()

    def __init__(self, secret_key: str):
        self._key = signing_key(secret_key)

    def verify(
        self, body: bytes, headers: Mapping[str, str], store_secret: SecretLookup
    ) -> Delivery:
        expected = base64_hmac(self._key, body)
        check_signature(headers.get(H_HMAC), expected, "invalid webhook signature")
        delivery = delivery_from_headers(
            headers, topic=H_TOPIC, shop=H_SHOP, event_ids=(H_EVENT,), triggered=H_TRIGGERED
        )
        # Translated once at the door: a body that could never be processed is a 400 now.
        payload = json_object(body)
        try:
            self.translate(
                payload,
                StoredDelivery(delivery.topic, b"", datetime.now(UTC), delivery.triggered_at),
                StoreContext(),
            )
        except UNTRANSLATABLE as exc:
            raise MalformedPayload(f"{delivery.topic} payload: {type(exc).__name__}") from None
        return delivery

    def to_events(self, delivery: StoredDelivery, store: StoreContext) -> list[ev.AppEvent]:
        return self.translate(json.loads(delivery.body), delivery, store)

    def translate(
        self, payload: dict, delivery: StoredDelivery, store: StoreContext
    ) -> list[ev.AppEvent]:
        """`to_events` on an already parsed payload."""
        occurred_at = delivery.triggered_at or delivery.received_at
        match delivery.topic:
            case "products/update":
                return [
                    ev.ProductChanged(
                        platform_id(payload["id"]), occurred_at, product_facts(payload)
                    )
                ]
            case "inventory_levels/update":
                return [
                    ev.InventoryChanged(
                        variant=ev.VariantRef(variant_id=platform_id(payload["variant_id"])),
                        location_id=platform_id(payload.get("location_id") or LOCATION),
                        available=int(payload["available"]),
                        occurred_at=occurred_at,
                    )
                ]
            case topic if topic in ORDER_TOPICS:
                if "line_items" not in payload:
                    # Like BigCommerce, a thin order payload leaves the lines to be fetched.
                    return [_fetch_order(payload["id"], occurred_at, delivery)]
                return [
                    ev.OrderChanged(platform_id(payload["id"]), occurred_at, order_facts(payload))
                ]
            case "orders/edited":
                # What changed, not the order after it: read the order from the store.
                edit = payload["order_edit"]
                return [_fetch_order(edit["order_id"], occurred_at, delivery)]
            case "refunds/create":
                return [_fetch_order(payload["order_id"], occurred_at, delivery)]
            case "app/uninstalled":
                return [ev.AppUninstalled(occurred_at)]
        return []


def _fetch_order(order_id, occurred_at: datetime, delivery: StoredDelivery) -> ev.OrderChanged:
    return ev.OrderChanged(platform_id(order_id), occurred_at, fetch=ev.Fetch(delivery.received_at))


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def order_facts(payload: dict) -> ev.OrderFacts:
    """The order as the store describes it now: each line's units as ordered, still on the
    order, shipped (its fulfilments) and refunded (its refunds' lines)."""
    shipped: dict[str, int] = {}
    for fulfillment in payload.get("fulfillments") or []:
        if fulfillment.get("status", "success") != "success":
            continue  # cancelled, failed or still pending: nothing left the building
        for item in fulfillment.get("line_items") or []:
            shipped[platform_id(item["id"])] = shipped.get(platform_id(item["id"]), 0) + int(
                item["quantity"]
            )
    refunded: dict[str, int] = {}
    for refund in payload.get("refunds") or []:
        for item in refund.get("refund_line_items") or []:
            key = platform_id(item["line_item_id"])
            refunded[key] = refunded.get(key, 0) + int(item["quantity"])
    return ev.OrderFacts(
        order_id=platform_id(payload["id"]),
        placed_at=datetime.fromisoformat(payload["created_at"]),
        name=str(payload.get("name") or ""),
        customer=ev.Customer(
            email=payload.get("email") or payload.get("contact_email") or None,
            locale=payload.get("customer_locale") or None,
        ),
        lines=tuple(
            ev.OrderLine(
                line_id=platform_id(item["id"]),
                variant=ev.VariantRef(variant_id=platform_id(item["variant_id"])),
                quantity=int(item["quantity"]),
                current_quantity=(
                    int(item["current_quantity"])
                    if item.get("current_quantity") is not None
                    else None
                ),
                fulfilled_quantity=shipped.get(platform_id(item["id"]), 0),
                refunded_quantity=refunded.get(platform_id(item["id"]), 0),
            )
            for item in payload.get("line_items", [])
            if item.get("variant_id") is not None
        ),
        cancelled_at=_when(payload.get("cancelled_at")),
        admin_url=ORDER_ADMIN_PATH.format(id=payload["id"]),
        updated_at=_when(payload.get("updated_at")),
    )


def product_facts(payload: dict) -> ev.ProductFacts:
    return ev.ProductFacts(
        platform_id=platform_id(payload["id"]),
        title=payload.get("title") or "",
        variants=tuple(
            ev.VariantFacts(
                platform_id=platform_id(v["id"]),
                sku=v.get("sku") or "",
                title=v.get("title") or "",
                sells_past_zero=v.get("inventory_policy") == "continue",
                levels={LOCATION: int(v.get("inventory_quantity") or 0)},
            )
            for v in payload.get("variants", [])
        ),
    )
