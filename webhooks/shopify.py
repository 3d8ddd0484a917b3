"""Shopify's webhooks: verified on the raw body, then turned into the app's own events.

Shopify signs every delivery with base64(HMAC-SHA256(raw body, client secret)). Delivery is at
least once, unordered and sometimes a day late. Only the body is signed, so the inbox names a
delivery by the digest of its body (a second delivery, or a replay under a new
`X-Shopify-Event-Id` or to another shop, is a duplicate) and the payload's own `updated_at`
orders it against what is already applied (`X-Shopify-Triggered-At` only where the topic's
payload has no date). A body that is not a JSON object of its topic's shape is a 400.
Payloads are the REST resources of the topics; ids can exceed 2**53, and Python's json keeps
them exact as ints, which become strings here.

Every order topic becomes one `OrderChanged`: the five that carry the whole order give its
snapshot, dated by the order's own `created_at` and `updated_at` (so whichever arrives last,
the newest snapshot wins); refunds/create and orders/edited only name the order, which the
app then reads through the connector.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from domain import events as ev
from webhooks.source import (
    UNTRANSLATABLE,
    Delivery,
    MalformedPayload,
    SecretLookup,
    StoreContext,
    StoredDelivery,
    WebhookRefused,
    base64_hmac,
    body_digest,
    check_signature,
    delivery_from_headers,
    json_object,
    parse_timestamp,
    platform_id,
    signed_time,
)

H_TOPIC = "X-Shopify-Topic"
H_HMAC = "X-Shopify-Hmac-Sha256"
H_SHOP = "X-Shopify-Shop-Domain"
H_EVENT = "X-Shopify-Event-Id"
H_WEBHOOK = "X-Shopify-Webhook-Id"
H_TRIGGERED = "X-Shopify-Triggered-At"

# Order topics whose payload is the whole order (the REST order resource).
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
    # An order edit and a refund name their order but do not carry it: the app reads it.
    "orders/edited",
    "refunds/create",
    "app/uninstalled",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
)
# Topics whose payload's `updated_at` is when the resource changed: their order comes from it.
SIGNED_TIME_TOPICS = frozenset({"products/update", "inventory_levels/update", *ORDER_TOPICS})
# Fulfilments that shipped nothing (REST `fulfillments[].status`).
NOT_SHIPPED = frozenset({"cancelled", "error", "failure"})


def sign(secret: str, body: bytes) -> str:
    """The `X-Shopify-Hmac-Sha256` value Shopify sends for `body`."""
    return base64_hmac(secret.encode(), body)


class ShopifyWebhooks:
    platform = "shopify"
    kept_header_prefixes = ("x-shopify-",)
    event_id_headers: tuple[str, ...] = ("x-shopify-event-id", "x-shopify-webhook-id")

    def __init__(self, client_secret: str):
        self._secret = client_secret

    def verify(
        self, body: bytes, headers: Mapping[str, str], store_secret: SecretLookup
    ) -> Delivery:
        if not body:
            raise WebhookRefused("invalid Shopify webhook HMAC", status=401)
        expected = sign(self._secret, body)
        check_signature(headers.get(H_HMAC), expected, "invalid Shopify webhook HMAC")
        headed = delivery_from_headers(
            headers,
            topic=H_TOPIC,
            shop=H_SHOP,
            event_ids=(H_EVENT, H_WEBHOOK),
            triggered=H_TRIGGERED,
        )
        payload = json_object(body)
        # Only the body is signed: the event id, topic, shop and time headers are not. The
        # inbox's dedupe key is therefore the body's digest (the same signed body replayed
        # under a new X-Shopify-Event-Id, or to another shop, is a duplicate: it would have the
        # same effect), and the order of events comes from the payload's own `updated_at`
        # where the topic has one. The headers stay with the stored delivery, for support.
        delivery = replace(
            headed,
            event_id=body_digest(body),
            triggered_at=ordering_time(headed.topic, payload, headed.triggered_at),
        )
        _check_shape(self, payload, delivery)
        return delivery

    def to_events(self, delivery: StoredDelivery, store: StoreContext) -> list[ev.AppEvent]:
        return self.translate(json.loads(delivery.body), delivery, store)

    def translate(
        self, payload: dict, delivery: StoredDelivery, store: StoreContext
    ) -> list[ev.AppEvent]:
        """`to_events` on an already parsed payload."""
        occurred_at = (
            ordering_time(delivery.topic, payload, delivery.triggered_at) or delivery.received_at
        )
        match delivery.topic:
            case "products/update":
                facts = product_facts(payload)
                fetch = None if facts is not None else ev.Fetch(delivery.received_at)
                return [ev.ProductChanged(platform_id(payload["id"]), occurred_at, facts, fetch)]
            case "inventory_levels/update":
                return [
                    ev.InventoryChanged(
                        variant=ev.VariantRef(
                            inventory_item_id=platform_id(payload["inventory_item_id"])
                        ),
                        location_id=platform_id(payload["location_id"]),
                        available=_int_or_none(payload.get("available")),
                        occurred_at=occurred_at,
                    )
                ]
            case topic if topic in ORDER_TOPICS:
                facts = order_facts(payload, store.shop_domain)
                return [ev.OrderChanged(facts.order_id, occurred_at, facts)]
            case "orders/edited":
                # What the edit changed, not the order after it: read the order from the store.
                edit = payload["order_edit"]
                return [_fetch_order(edit["order_id"], occurred_at, delivery)]
            case "refunds/create":
                return [_fetch_order(payload["order_id"], occurred_at, delivery)]
            case "app/uninstalled":
                return [ev.AppUninstalled(occurred_at)]
            case "customers/data_request":
                return [
                    ev.CustomerDataRequest(
                        customer_email=_customer_email(payload),
                        order_ids=_ids(payload.get("orders_requested")),
                        occurred_at=occurred_at,
                    )
                ]
            case "customers/redact":
                return [
                    ev.CustomerRedact(
                        customer_email=_customer_email(payload),
                        order_ids=_ids(payload.get("orders_to_redact")),
                        occurred_at=occurred_at,
                    )
                ]
            case "shop/redact":
                return [ev.ShopRedact(occurred_at)]
        return []


def signed_time_of(topic: str, payload: object) -> datetime | None:
    """The signed time of a topic whose payload dates the resource's change; None otherwise
    (a refund or an order edit does not carry the order's `updated_at`, the shop resource of
    app/uninstalled dates the shop, not the uninstall)."""
    return signed_time(payload) if topic in SIGNED_TIME_TOPICS else None


def ordering_time(topic: str, payload: object, header_time: datetime | None) -> datetime | None:
    """The payload's signed `updated_at` where the topic has one; the unsigned
    `X-Shopify-Triggered-At` only where it does not.

    `updated_at` has whole seconds: a header time within that same second only orders two
    changes of one second, so it is kept; any other header time is not believed.
    """
    signed = signed_time_of(topic, payload)
    if signed is None:
        return header_time
    if header_time is not None and signed <= header_time < signed + timedelta(seconds=1):
        return header_time
    return signed


def _check_shape(source, payload: dict, delivery: Delivery) -> None:
    """Translate once at the door: a signed body that could never be processed (a field
    missing or of the wrong type) is refused with a 400 now rather than failing in the worker."""
    try:
        source.translate(
            payload,
            StoredDelivery(
                topic=delivery.topic,
                body=b"",
                received_at=datetime.now(UTC),
                triggered_at=delivery.triggered_at,
            ),
            StoreContext(),
        )
    except UNTRANSLATABLE as exc:
        raise MalformedPayload(f"{delivery.topic} payload: {type(exc).__name__}") from None


def product_facts(payload: dict) -> ev.ProductFacts | None:
    """Partial facts from a products/update payload, or None when the app must fetch them.

    The payload has no per-location stock (levels stay None: the mirror keeps its own) and, in
    current API versions, no `tracked` flag (that lives on the inventory item; None keeps the
    mirror's). Partial facts apply only to variants the app already mirrors: the app reads the
    product whole when one is new. A variant without `inventory_item_id` (Shopify's own sample
    has them) would leave the mirror without the link inventory_levels/update needs, so such a
    payload is not used at all. The policy is the store's as it stands, which may be one the
    app wrote; the app tells that from the merchant's own.
    """
    variants = payload.get("variants") or []
    if any(v.get("inventory_item_id") is None for v in variants):
        return None
    return ev.ProductFacts(
        platform_id=platform_id(payload["id"]),
        title=payload.get("title") or "",
        variants=tuple(
            ev.VariantFacts(
                platform_id=platform_id(v["id"]),
                sku=v.get("sku") or "",
                title=v.get("title") or "",
                inventory_item_id=platform_id(v["inventory_item_id"]),
                tracked=_tracked(v),
                sells_past_zero=v.get("inventory_policy") == "continue",
                levels=None,
            )
            for v in variants
        ),
    )


def _tracked(variant: dict) -> bool | None:
    # Older API versions still send inventory_management ("shopify" when Shopify tracks it).
    if "inventory_management" in variant:
        return variant["inventory_management"] is not None
    return None


def _fetch_order(order_id, occurred_at, delivery: StoredDelivery) -> ev.OrderChanged:
    return ev.OrderChanged(platform_id(order_id), occurred_at, fetch=ev.Fetch(delivery.received_at))


def admin_url(shop_domain: str, order_id: str) -> str | None:
    """Where the merchant opens the order: https://admin.shopify.com/store/<store>/orders/<id>,
    the store being its myshopify.com name."""
    store = shop_domain.strip().lower().removesuffix(".myshopify.com")
    if not store or "." in store or "/" in store:
        return None
    return f"https://admin.shopify.com/store/{store}/orders/{order_id}"


def order_facts(payload: dict, shop_domain: str = "") -> ev.OrderFacts:
    """The order as an order topic's payload (the REST order resource) describes it.

    Per line: units as ordered (`quantity`), still on the order after edits, removals and
    refunds (`current_quantity`), shipped (the line's units in fulfilments that did not fail
    or get cancelled) and refunded (its `refunds[].refund_line_items`). A cancellation is only
    ever `cancelled_at`: `fulfillable_quantity` 0 also means refunded, removed or shipped.
    The snapshot is dated by the order's own `updated_at`, so a late older one is refused.
    """
    order_id = platform_id(payload["id"])
    customer = payload.get("customer") or {}
    name = " ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p)
    shipped = _fulfilled_units(payload.get("fulfillments"))
    refunded = _refunded_units(payload.get("refunds"))
    placed_at = parse_timestamp(payload.get("created_at")) or parse_timestamp(
        payload.get("processed_at")
    )
    if placed_at is None:
        raise ValueError(f"order {order_id} has no created_at")
    return ev.OrderFacts(
        order_id=order_id,
        placed_at=placed_at,
        updated_at=parse_timestamp(payload.get("updated_at")),
        name=str(payload.get("name") or ""),
        customer=ev.Customer(
            email=payload.get("email") or payload.get("contact_email") or _customer_email(payload),
            name=name or None,
            locale=payload.get("customer_locale") or None,
        ),
        cancelled_at=parse_timestamp(payload.get("cancelled_at")),
        admin_url=admin_url(shop_domain, order_id) if shop_domain else None,
        lines=tuple(
            ev.OrderLine(
                line_id=platform_id(item["id"]),
                variant=ev.VariantRef(
                    variant_id=platform_id(item["variant_id"]),
                    product_id=platform_id(item["product_id"]) if item.get("product_id") else None,
                ),
                quantity=int(item.get("quantity") or 0),
                current_quantity=_int_or_none(item.get("current_quantity")),
                fulfilled_quantity=shipped.get(platform_id(item["id"]), 0),
                refunded_quantity=refunded.get(platform_id(item["id"]), 0),
            )
            # Custom items, tips and deleted variants carry no variant: nothing to badge.
            for item in payload.get("line_items") or []
            if item.get("variant_id") is not None
        ),
    )


def _fulfilled_units(fulfillments) -> dict[str, int]:
    units: dict[str, int] = {}
    for fulfillment in fulfillments or []:
        if str(fulfillment.get("status") or "").lower() in NOT_SHIPPED:
            continue
        for item in fulfillment.get("line_items") or []:
            key = platform_id(item["id"])
            units[key] = units.get(key, 0) + int(item.get("quantity") or 0)
    return units


def _refunded_units(refunds) -> dict[str, int]:
    units: dict[str, int] = {}
    for refund in refunds or []:
        for item in refund.get("refund_line_items") or []:
            key = platform_id(item["line_item_id"])
            units[key] = units.get(key, 0) + int(item.get("quantity") or 0)
    return units


def _customer_email(payload: dict) -> str | None:
    customer = payload.get("customer") or {}
    return customer.get("email") or None


def _ids(values) -> tuple[str, ...]:
    return tuple(platform_id(v) for v in values or ())


def _int_or_none(value) -> int | None:
    return None if value is None else int(value)
