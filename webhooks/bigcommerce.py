"""BigCommerce webhooks: two checks before anything is stored, then thin payloads to app events.

1. The Standard Webhooks signature (`webhook-id`, `webhook-timestamp`, `webhook-signature`),
   checked with the `standardwebhooks` package exactly as BigCommerce documents it:
   `Webhook(base64(client_secret)).verify(body, headers)`; it also refuses stale timestamps.
2. The random secret the app put in the hook's custom `headers` at registration
   (`X-Backorder-Secret`), compared with the store's own secret (which the app looks up).
Either failing, or the secret header missing, is a 401 and nothing is stored.

Deduplication goes through the inbox's one unique key (platform, event_id):
- the event id is the `webhook-id` header, which stays the same when BigCommerce resends;
- for `store/order/created`, whose payload names a one-off occurrence (an order is created
  once), the event id is built from the payload `hash` instead, so the same order delivered
  twice under two webhook ids (a duplicate hook, a resend with a fresh id) is stored once.
  The hash is NOT a dedupe key anywhere else. BigCommerce suggests it for spotting
  duplicates, but describes it as "the SHA-1 hash of the JSON-encoded payload data", and its
  documented samples of different scopes share hashes, so nothing says it covers more than
  `data` (it cannot tell two changes with the same `data` apart):
  - `store/order/updated` carries only the order id: every later change of order 250 has the
    same data, so a hash dedupe would drop every update after the first;
  - `store/order/statusUpdated` adds the status pair, which recurs whenever a merchant sets
    a status back and forth (Awaiting Fulfillment -> Awaiting Shipment, twice);
  - `store/order/refund/created` and `store/shipment/created` name a refund or shipment id,
    so a hash key would be sound there, yet gains nothing: the delivery only prompts a re-read
    of the order, and a true duplicate under a new id costs two reads and changes nothing (the
    newest snapshot wins and settling writes only changes), while an event wrongly dropped
    would leave the ledger stale until the next reconciliation;
  - stock and product scopes: "stock set to 5" twice in a day is one `data` but two real
    changes. Those events only trigger a fresh fetch too.

Payloads are thin (ids only): the events built here carry no facts but a `Fetch` request, and
the app reads the product, stock or order through the BigCommerce connector. Every order scope
(created, updated, statusUpdated, refund/created) and `store/shipment/created` (whose `data` is
the shipment, naming its order as `orderId`) becomes the same `OrderChanged`, completed from the
V2 order and its products: the order's status, each line's `quantity_shipped` and
`quantity_refunded`. Arrival order does not matter: each read is the order as it is now, and
the ledger refuses a snapshot whose `date_modified` is older than the one applied. No HTTP
happens here.
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from domain import events as ev
from webhooks.source import (
    MAX_EVENT_ID,
    MAX_SHOP,
    MAX_TOPIC,
    UNTRANSLATABLE,
    Delivery,
    MalformedPayload,
    SecretLookup,
    StoreContext,
    StoredDelivery,
    WebhookRefused,
    checked_text,
    json_object,
    platform_id,
)

SECRET_HEADER = "X-Backorder-Secret"  # noqa: S105 - a header name, not a secret
# BigCommerce's default location; stores that never enabled multi-location have only this one.
DEFAULT_LOCATION_IDS = ("1",)
HASH_DEDUPED_SCOPES = frozenset({"store/order/created"})
PRODUCT_SCOPES = frozenset({"store/product/updated", "store/product/created"})
PRODUCT_STOCK_SCOPES = frozenset(
    {"store/product/inventory/updated", "store/product/inventory/order/updated"}
)
SKU_STOCK_SCOPES = frozenset({"store/sku/inventory/updated", "store/sku/inventory/order/updated"})
# Scopes whose `data.id` is the order's id.
ORDER_SCOPES = frozenset(
    {
        "store/order/created",
        "store/order/updated",
        "store/order/statusUpdated",
        "store/order/refund/created",
    }
)
# `data` is the shipment; `data.orderId` names its order.
SHIPMENT_SCOPES = frozenset({"store/shipment/created"})


def product_item_id(product_id: str) -> str:
    """The mirror's inventory item key for a product tracked at product level."""
    return f"product:{product_id}"


def store_hash_of(payload: dict) -> str | None:
    producer = str(payload.get("producer") or "")
    if producer.startswith("stores/") and len(producer) > len("stores/"):
        return producer[len("stores/") :]
    return None


def signing_secret(client_secret: str) -> str:
    """What BigCommerce's docs hand to `Webhook`: the client secret, base64-encoded."""
    return base64.b64encode(client_secret.encode()).decode()


class BigCommerceWebhooks:
    platform = "bigcommerce"
    kept_header_prefixes = ("webhook-", "x-bc-")
    event_id_headers: tuple[str, ...] = ()

    def __init__(self, client_secret: str):
        self._client_secret = client_secret

    def verify(
        self, body: bytes, headers: Mapping[str, str], store_secret: SecretLookup
    ) -> Delivery:
        client_secret = self._client_secret
        if not client_secret:
            raise WebhookRefused("BigCommerce client secret is not configured")
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            Webhook(signing_secret(client_secret)).verify(body, lowered, json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:
            raise WebhookRefused(f"invalid webhook signature: {exc}") from None

        payload = json_object(body)  # not JSON, nested too deep, not an object: 400
        store_hash = store_hash_of(payload)
        scope = payload.get("scope")
        if not store_hash or not scope:
            raise WebhookRefused("payload names no scope or producer store", status=400)
        checked_text(scope, "scope", MAX_TOPIC)
        checked_text(store_hash, "producer", MAX_SHOP)

        expected = store_secret(store_hash)
        given = lowered.get(SECRET_HEADER.lower(), "")
        if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRefused(f"missing or wrong {SECRET_HEADER} header")

        delivery = Delivery(
            shop_domain=store_hash,
            topic=scope,
            event_id=checked_text(
                event_id_for(payload, store_hash, lowered["webhook-id"]), "event id", MAX_EVENT_ID
            ),
            triggered_at=_epoch(payload.get("created_at")) or _epoch(lowered["webhook-timestamp"]),
        )
        # Translated once at the door: a body that could never be processed is a 400 now.
        try:
            self.translate(
                payload,
                StoredDelivery(scope, b"", datetime.now(UTC), delivery.triggered_at),
                StoreContext(),
            )
        except UNTRANSLATABLE as exc:
            raise MalformedPayload(f"{scope} payload: {type(exc).__name__}") from None
        return delivery

    def to_events(self, delivery: StoredDelivery, store: StoreContext) -> list[ev.AppEvent]:
        return self.translate(json.loads(delivery.body), delivery, store)

    def translate(
        self, payload: dict, delivery: StoredDelivery, store: StoreContext
    ) -> list[ev.AppEvent]:
        """`to_events` on an already parsed payload."""
        data = payload.get("data") or {}
        scope = delivery.topic
        # Product and stock events carry no facts: the app reads them from the store, with a
        # read begun after the event reached the app, so the facts applied are at least as of
        # `received_at` (to the microsecond; `created_at` is whole seconds, and hours old on a
        # retry). Stamped so, a late event's fresh read is not skipped as stale, and the
        # connector may share a read another job began after this event arrived.
        occurred_at = delivery.received_at
        fetch = ev.Fetch(fresh_after=occurred_at)
        if scope in PRODUCT_SCOPES:
            return [ev.ProductChanged(platform_id(data["id"]), occurred_at, fetch=fetch)]
        if scope in PRODUCT_STOCK_SCOPES or scope in SKU_STOCK_SCOPES:
            inventory = data.get("inventory") or {}
            product_id = platform_id(inventory.get("product_id") or data["id"])
            if store.native_backorders:
                # Native backorder counts move with stock; only the whole product carries them.
                return [ev.ProductChanged(product_id, occurred_at, fetch=fetch)]
            if scope in PRODUCT_STOCK_SCOPES:
                ref = ev.VariantRef(
                    inventory_item_id=product_item_id(product_id), product_id=product_id
                )
            else:
                ref = ev.VariantRef(
                    variant_id=platform_id(inventory["variant_id"]), product_id=product_id
                )
            locations = store.location_ids or DEFAULT_LOCATION_IDS
            return _stock_events(ref, locations, occurred_at, fetch)
        if scope in ORDER_SCOPES or scope in SHIPMENT_SCOPES:
            # The payload names only the order: the app reads it whole (fetch_order).
            order_id = data["orderId"] if scope in SHIPMENT_SCOPES else data["id"]
            changed_at = delivery.triggered_at or delivery.received_at
            return [ev.OrderChanged(platform_id(order_id), changed_at, fetch=fetch)]
        return []


def event_id_for(payload: dict, store_hash: str, webhook_id: str) -> str:
    digest = payload.get("hash")
    if payload.get("scope") in HASH_DEDUPED_SCOPES and digest:
        return f"hash:{store_hash}:{payload['scope']}:{digest}"
    return webhook_id


def _stock_events(
    ref: ev.VariantRef, location_ids, occurred_at: datetime, fetch: ev.Fetch
) -> list[ev.AppEvent]:
    # The payload's `value` is not applied: for `relative` it is a change, not a level, and a
    # level read now is newer than any figure in a payload. The app fetches each location.
    return [
        ev.InventoryChanged(
            variant=ref, location_id=str(loc), available=None, occurred_at=occurred_at, fetch=fetch
        )
        for loc in location_ids
    ]


def _epoch(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC) if value is not None else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None
