"""The BigCommerce store behind the `Connector` interface: V3 catalog and inventory reads, badge
metafield writes, and the V2 order and store reads BigCommerce still documents (V3 has no
equivalent for an order's products or the store's time zone).

Calls per job are kept low because the store's quota is shared by every app on it: a product is
one catalog call (variants included) plus one inventory call; a stock event is one inventory
call however many locations it names (answers are kept until the unit of work ends); a catalog
page of 250 products is one catalog call plus one inventory call per 1,000 items; an order
event is two calls (the order, its products; one more per further 250 lines).

A burst of stock events for one product needs far fewer reads than events: a read of the
product's stock that BEGAN after an event reached the app already shows that event's change, so
jobs share such reads through the app's shared cache (`SHARED_READ_TTL_S`). Each event's job
uses a shared read only if it began after the event's `received_at` (the `fresh_after` of its
fetch request), and applies it stamped with that `received_at`; so whatever is applied reflects
every change before its stamp, and the mirror's "newer stamp wins" rule never drops a change.

A reconciliation costs, on top of the catalogue pages and the registration check: one call for
the store (`/v2/store`), one call per 250 orders changed since the last run plus one per such
order (its products), and two per order the ledger still owes units on that did not change.
So a run that finds 40 changed orders and 10 other owed orders spends 1 + 1 + 40 + 20 = 62 of
the store's 150 requests per 30 s (the client paces itself to the quota it is told). A first
reconciliation reads every order of the lookback period the app asks for, one products call
each.

One connector serves one unit of work: reads are kept on it until it is dropped. Orders live
in `orders`, the store's own facts (`/v2/store`, location names) in `store`, badge metafields in
`metafields` and native backorder limits in `backorders`; this module reads the catalogue and
its stock and puts them together behind the interface.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from connectors.base import CatalogPage, Credentials, KeyValueCache
from connectors.bigcommerce import backorders, mapping, metafields, orders, store
from connectors.bigcommerce.client import BigCommerceClient, NotFound, RequestRefused, api_base
from connectors.bigcommerce.orders import (  # noqa: F401  (kept importable from here)
    CONTROL_PANEL,
    MODIFIED_OVERLAP,
    NOTHING_MORE_SHIPS,
    ORDER_PRODUCTS_LIMIT,
    ORDERS_LIMIT,
    STATUS_CANCELLED,
    STATUS_DECLINED,
    STATUS_INCOMPLETE,
    STATUS_REFUNDED,
)
from connectors.bigcommerce.registration import register_store
from connectors.bigcommerce.store import LOCATIONS_LIMIT  # noqa: F401
from domain import events as ev
from domain.badges import BadgePush, PushResult

log = logging.getLogger(__name__)

PAGE_LIMIT = 250
ITEMS_LIMIT = 1000
MAX_PAGES = 10_000
SHARED_READ_TTL_S = 120
# Allowance for clock differences between the web process that stamped `received_at` and the
# worker that stamped a read's start.
CLOCK_SKEW = timedelta(milliseconds=250)
# One client per store and token per process, so its view of the shared quota carries over
# from one job to the next.
_clients: dict[tuple[str, str], BigCommerceClient] = {}


def client_for(store_hash: str, token: str, api_base_override: str | None = None):
    """The process's client for this store and token, so its view of the quota carries over."""
    key = (store_hash, token)
    if key not in _clients:
        _clients[key] = BigCommerceClient(
            store_hash, token, base_url=api_base(store_hash, api_base_override)
        )
    return _clients[key]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BigCommerceConnector:
    platform = "bigcommerce"

    def __init__(
        self,
        store_hash: str,
        credentials: Credentials,
        cache: KeyValueCache,
        *,
        app_url: str,
        webhook_secret: str | None = None,
        api_base_override: str | None = None,
        client: BigCommerceClient | None = None,
        client_id: str | None = None,
    ):
        self.store_hash = store_hash
        self.cache = cache
        self.app_url = app_url
        self.webhook_secret = webhook_secret
        self.client_id = client_id
        self.client = client or client_for(
            store_hash, credentials.access_token(), api_base_override
        )
        # Inventory reads of this unit of work: (field, ids) -> items.
        self._reads: dict[tuple[str, str], list[dict]] = {}

    # -- reads -----------------------------------------------------------------------------

    def prepare_store(self) -> None:
        """Put back webhooks or the storefront script removed since install: BigCommerce turns
        hooks off after 90 days without deliveries, and a merchant can delete the script.

        A store that refuses the registration itself (a 4xx no retry fixes) does not stop the
        catalogue sync that follows: badges are still decided and written, and the app shows
        the registration error on the store's pages (the next load retries it).
        """
        if not self.webhook_secret:
            return  # registration first runs at install, which creates the secret
        try:
            register_store(
                self.client,
                self.app_url,
                self.store_hash,
                self.webhook_secret,
                client_id=self.client_id,
            )
        except RequestRefused as exc:
            log.warning("registration refused for %s; syncing anyway: %s", self.store_hash, exc)

    def fetch_product(
        self, product_id: str, fresh_after: datetime | None = None
    ) -> ev.ProductFacts | None:
        if not str(product_id).isdigit():
            return None
        try:
            body = self.client.request(
                "GET", f"/v3/catalog/products/{product_id}", params={"include": "variants"}
            )
        except NotFound:
            return None
        product = body["data"]
        tracked = mapping.is_tracked(product)
        items = self._items("product_id", [str(product["id"])], fresh_after) if tracked else []
        return mapping.product_facts(product, items)

    def resolve_variant(
        self, ref: ev.VariantRef, fresh_after: datetime | None = None
    ) -> ev.ProductFacts | None:
        product_id = ref.product_id or _product_of_item(ref.inventory_item_id)
        if product_id is None and ref.variant_id and ref.variant_id.isdigit():
            body = self.client.request(
                "GET", "/v3/catalog/variants", params={"id:in": ref.variant_id}
            )
            rows = body.get("data") or []
            product_id = str(rows[0]["product_id"]) if rows else None
        return self.fetch_product(product_id, fresh_after) if product_id else None

    def fetch_level(
        self, ref: ev.VariantRef, location_id: str, fresh_after: datetime | None = None
    ) -> int | None:
        """`ref.variant_id` with a product-level item is the mirrored (base) variant's id."""
        product_id = _product_of_item(ref.inventory_item_id)
        if product_id is not None:
            items = self._items("product_id", [product_id], fresh_after)
            item = mapping.pick_product_item(items, ref.variant_id)
        elif ref.variant_id:
            # By product when known: one answer then serves every variant and location of it,
            # including the one a first fetch_product (for an unmirrored variant) just read.
            if ref.product_id:
                items = self._items("product_id", [ref.product_id], fresh_after)
            else:
                items = self._items("variant_id", [ref.variant_id], fresh_after)
            item = next(
                (it for it in items if str(it["identity"].get("variant_id")) == ref.variant_id),
                None,
            )
        else:
            return None
        if item is None:
            return None
        return mapping.item_levels(item).get(str(location_id), 0)

    def iter_catalog(self, cursor: str | None = None) -> Iterator[CatalogPage]:
        page = int(cursor or 1)
        for _ in range(MAX_PAGES):
            body = self.client.request(
                "GET",
                "/v3/catalog/products",
                params={"include": "variants", "limit": PAGE_LIMIT, "page": page},
            )
            products = body.get("data") or []
            pagination = (body.get("meta") or {}).get("pagination") or {}
            tracked = [str(p["id"]) for p in products if mapping.is_tracked(p)]
            items = self._items("product_id", tracked, None) if tracked else []
            by_product: dict[str, list[dict]] = {}
            for item in items:
                by_product.setdefault(str(item["identity"].get("product_id")), []).append(item)
            more = page < int(pagination.get("total_pages") or 1) and bool(products)
            yield CatalogPage(
                [mapping.product_facts(p, by_product.get(str(p["id"]), [])) for p in products],
                str(page + 1) if more else None,
                pagination.get("total"),
            )
            if not more:
                return
            page += 1

    def fetch_order(self, order_id: str) -> ev.OrderFacts | None:
        """The order as it is now, for every order event (their payloads carry only its id):
        `GET /v2/orders/{id}` and `GET /v2/orders/{id}/products`, two calls."""
        return orders.fetch_order(self.client, self.store_hash, order_id)

    def orders_changed_since(self, since: datetime) -> Iterator[ev.OrderFacts]:
        """Orders modified at or after `since`, oldest change first, each with its products
        (see `orders.orders_changed_since`)."""
        return orders.orders_changed_since(self.client, self.store_hash, since)

    def fetch_store(self) -> ev.StoreFacts:
        """`GET /v2/store`: time zone, default language, country, name, order address."""
        return store.fetch_store(self.client)

    def push_storefront_config(self, config: dict) -> None:
        """The storefront script asks the badge API in the page's language: nothing to push."""

    def fetch_locations(self) -> list[ev.LocationFacts]:
        """The enabled locations and their labels (a store without the locations scope has
        none to give: stock still counts by id)."""
        return store.fetch_locations(self.client, self.store_hash)

    # -- writes ----------------------------------------------------------------------------

    def cancel_line(self, order_id: str, line_id: str) -> str:
        """Take one product off the order (`PUT /v2/orders/{id}`, its quantity set to 0)."""
        return orders.cancel_line(self.client, order_id, line_id)

    def cancel_order(self, order_id: str) -> str:
        """Cancel the whole order: `PUT /v2/orders/{id}` with `status_id` 5 (Cancelled)."""
        return orders.cancel_order(self.client, order_id)

    def push_badges(self, pushes: Sequence[BadgePush]) -> PushResult:
        """Badge metafields, and `enforced_policy` through the store's native backorders;
        raises ConnectorError unless every write landed.

        BigCommerce has no per-variant "keep selling at zero" switch: where the store has
        native backorders the app raises an item's `backorder_limit` instead (see
        `backorders`), one inventory read plus one write per location; elsewhere the app
        shows backorders but cannot enable them (the settings page does not offer it).
        """
        if not pushes:
            return PushResult()

        def product_level(push: BadgePush) -> bool:
            return _product_of_item(push.inventory_item_id) is not None

        metafields.push_all(self.client, self.cache, pushes, product_level)
        policies = backorders.write_limits(
            self.client,
            pushes,
            lambda product_ids: self._items("product_id", product_ids, None),
            product_level,
        )
        return PushResult(policies=policies)

    # -- helpers ---------------------------------------------------------------------------

    def _items(self, field: str, ids: list[str], fresh_after: datetime | None) -> list[dict]:
        """Inventory API items for products or variants, kept for this unit of work."""
        cache = self._reads
        key = (field, ",".join(ids))
        shared_key = self._shared_key(field, ids)
        if key not in cache and shared_key:
            shared = self._shared_read(shared_key, fresh_after)
            if shared is not None:
                cache[key] = shared
        if key not in cache:
            started = _utcnow()
            items: list[dict] = []
            for page in range(1, MAX_PAGES + 1):
                body = self.client.request(
                    "GET",
                    "/v3/inventory/items",
                    params={f"{field}:in": ",".join(ids), "limit": ITEMS_LIMIT, "page": page},
                )
                items.extend(body.get("data") or [])
                pagination = (body.get("meta") or {}).get("pagination") or {}
                if page >= int(pagination.get("total_pages") or 1):
                    break
            cache[key] = items
            if shared_key:
                self._share_read(shared_key, started, items)
        return cache[key]

    def _shared_key(self, field: str, ids: list[str]) -> str | None:
        """Only one product's stock is shared, the unit stock events ask for."""
        if field != "product_id" or len(ids) != 1:
            return None
        return f"bb:bigcommerce:stock-read:{self.store_hash}:{ids[0]}"

    def _shared_read(self, key: str, fresh_after: datetime | None) -> list[dict] | None:
        """A read another job began after `fresh_after`, or None."""
        if fresh_after is None:
            return None
        raw = self.cache.get(key)
        if raw is None:
            return None
        shared = json.loads(raw)
        began = datetime.fromisoformat(shared["began"])
        return shared["items"] if began > fresh_after + CLOCK_SKEW else None

    def _share_read(self, key: str, began: datetime, items: list[dict]) -> None:
        value = json.dumps({"began": began.isoformat(), "items": items})
        self.cache.set(key, value, SHARED_READ_TTL_S)


def _product_of_item(inventory_item_id: str | None) -> str | None:
    if inventory_item_id and inventory_item_id.startswith("product:"):
        return inventory_item_id[len("product:") :]
    return None
