"""The BigCommerce store behind the `Connector` interface: V3 catalog and inventory reads, badge
metafield writes, and the V2 order read BigCommerce still documents for an order's products.

Calls per job are kept low because the store's quota is shared by every app on it: a product is
one catalog call (variants included) plus one inventory call; a stock event is one inventory
call however many locations it names (answers are kept until the unit of work ends); a catalog
page of 250 products is one catalog call plus one inventory call per 1,000 items.

A burst of stock events for one product needs far fewer reads than events: a read of the
product's stock that BEGAN after an event reached the app already shows that event's change, so
jobs share such reads through Redis (`SHARED_READ_TTL_S`). Each event's job uses a shared read
only if it began after the event's `received_at` (left by the webhook source in `session.info`),
and applies it stamped with that `received_at`; so whatever is applied reflects every change
before its stamp, and the mirror's "newer stamp wins" rule never drops a change.
"""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from connectors.base import BadgePush, CatalogPage, ConnectorError
from connectors.bigcommerce import mapping, metafields
from connectors.bigcommerce.client import BigCommerceClient, NotFound
from plugin.extensions import redis_connection
from plugin.models import Shop, Variant, utcnow
from plugin.services.tokens import vault
from webhooks import events as ev
from webhooks.bigcommerce import FRESH_AFTER_KEY, product_item_id

log = logging.getLogger(__name__)

PAGE_LIMIT = 250
ITEMS_LIMIT = 1000
ORDER_PRODUCTS_LIMIT = 250
MAX_PAGES = 10_000
_CACHE_KEY = "bigcommerce_inventory_items"
SHARED_READ_TTL_S = 120
# Allowance for clock differences between the web process that stamped `received_at` and the
# worker that stamped a read's start.
CLOCK_SKEW = timedelta(milliseconds=250)
# One client per store and token per process, so its view of the shared quota carries over
# from one job to the next.
_clients: dict[tuple[str, str], BigCommerceClient] = {}


def client_for(shop: Shop) -> BigCommerceClient:
    if not shop.access_token_encrypted:
        raise ConnectorError(f"store {shop.domain} has no access token")
    token = vault().decrypt(shop.access_token_encrypted)
    key = (shop.domain, token)
    if key not in _clients:
        _clients[key] = BigCommerceClient(shop.domain, token)
    return _clients[key]


class BigCommerceConnector:
    platform = "bigcommerce"

    def __init__(self, shop: Shop, session: Session, client: BigCommerceClient | None = None):
        self.shop = shop
        self.session = session
        self.client = client or client_for(shop)

    # -- reads -----------------------------------------------------------------------------

    def prepare_store(self) -> None:
        """Put back webhooks or the storefront script removed since install: BigCommerce turns
        hooks off after 90 days without deliveries, and a merchant can delete the script."""
        from flask import current_app

        from connectors.bigcommerce.registration import WEBHOOK_SECRET_KEY, register_store

        secret = (self.shop.platform_data or {}).get(WEBHOOK_SECRET_KEY)
        if not secret:
            return  # registration first runs at install, which creates the secret
        app_url = current_app.extensions["settings"].app_url
        register_store(self.client, app_url, self.shop.domain, secret)

    def fetch_product(self, product_id: str) -> ev.ProductFacts | None:
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
        items = self._items("product_id", [str(product["id"])]) if tracked else []
        return mapping.product_facts(product, items)

    def resolve_variant(self, ref: ev.VariantRef) -> ev.ProductFacts | None:
        product_id = ref.product_id or _product_of_item(ref.inventory_item_id)
        if product_id is None and ref.variant_id and ref.variant_id.isdigit():
            body = self.client.request(
                "GET", "/v3/catalog/variants", params={"id:in": ref.variant_id}
            )
            rows = body.get("data") or []
            product_id = str(rows[0]["product_id"]) if rows else None
        return self.fetch_product(product_id) if product_id else None

    def fetch_level(self, ref: ev.VariantRef, location_id: str) -> int | None:
        product_id = _product_of_item(ref.inventory_item_id)
        if product_id is not None:
            items = self._items("product_id", [product_id])
            item = mapping.pick_product_item(items, self._mirrored_base_id(ref))
        elif ref.variant_id:
            # By product when known: one answer then serves every variant and location of it,
            # including the one a first fetch_product (for an unmirrored variant) just read.
            if ref.product_id:
                items = self._items("product_id", [ref.product_id])
            else:
                items = self._items("variant_id", [ref.variant_id])
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
            items = self._items("product_id", tracked) if tracked else []
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

    def fetch_order(self, order_id: str) -> ev.OrderCreated | None:
        """The order's lines, for `store/order/created` (whose payload has only the id).

        V2 is still BigCommerce's documented API for an order and its products.
        """
        try:
            order = self.client.request("GET", f"/v2/orders/{order_id}")
        except NotFound:
            return None
        rows: list[dict] = []
        for page in range(1, MAX_PAGES + 1):
            body = self.client.request(
                "GET",
                f"/v2/orders/{order_id}/products",
                params={"limit": ORDER_PRODUCTS_LIMIT, "page": page},
            )
            batch = body.get("data") or []
            rows.extend(batch)
            if len(batch) < ORDER_PRODUCTS_LIMIT:
                break
        product_level = self._product_level_products(
            {str(r["product_id"]) for r in rows if r.get("product_id")}
        )
        lines = tuple(
            ev.OrderLine(
                line_id=str(row["id"]),
                variant=_line_ref(row, product_level),
                quantity=int(row.get("quantity") or 0),
            )
            for row in rows
            if row.get("product_id")
        )
        return ev.OrderCreated(
            order_id=str(order.get("id") or order_id),
            occurred_at=_rfc2822(order.get("date_created")) or utcnow(),
            order_name=f"#{order.get('id') or order_id}",
            customer_email=(order.get("billing_address") or {}).get("email") or None,
            lines=lines,
        )

    # -- writes ----------------------------------------------------------------------------

    def push_badges(self, pushes: Sequence[BadgePush]) -> None:
        """Badge metafields; raises ConnectorError unless every write landed.

        `enforced_policy` is not applied: BigCommerce has no per-variant "keep selling at zero"
        switch to flip (only the store's native backorders, beta, or a product's pre-order
        availability), so on BigCommerce the app shows backorders but does not enable them.
        """
        if not pushes:
            return
        product_level = {
            v.platform_id
            for v in self.session.scalars(
                select(Variant).where(
                    Variant.shop_id == self.shop.id,
                    Variant.platform_id.in_([p.variant_platform_id for p in pushes]),
                    Variant.inventory_item_id.like("product:%"),
                )
            )
        }
        metafields.push_all(self.client, pushes, product_level)

    # -- helpers ---------------------------------------------------------------------------

    def _items(self, field: str, ids: list[str]) -> list[dict]:
        """Inventory API items for products or variants, kept until the transaction ends."""
        cache = _session_cache(self.session)
        key = (self.shop.id, field, ",".join(ids))
        shared_key = self._shared_key(field, ids)
        if key not in cache and shared_key:
            shared = _shared_read(shared_key, self.session.info.get(FRESH_AFTER_KEY))
            if shared is not None:
                cache[key] = shared
        if key not in cache:
            started = utcnow()
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
            self._remember_store_facts(items)
            if shared_key:
                _share_read(shared_key, started, items)
        return cache[key]

    def _shared_key(self, field: str, ids: list[str]) -> str | None:
        """Only one product's stock is shared, the unit stock events ask for."""
        if field != "product_id" or len(ids) != 1:
            return None
        return f"bb:bigcommerce:stock-read:{self.shop.domain}:{ids[0]}"

    def _remember_store_facts(self, items: list[dict]) -> None:
        """Locations and native backorders seen, so stock events name every location."""
        data = dict(self.shop.platform_data or {})
        known = set(data.get("location_ids") or [])
        seen = mapping.location_ids(items)
        native = any(mapping.native_backorders(it)[0] is not None for it in items)
        changed = False
        if seen - known:
            data["location_ids"] = sorted(known | seen, key=lambda x: (len(x), x))
            changed = True
        if native and not data.get("native_backorders"):
            data["native_backorders"] = True
            changed = True
        if changed:
            self.shop.platform_data = data

    def _mirrored_base_id(self, ref: ev.VariantRef) -> str | None:
        return self.session.scalar(
            select(Variant.platform_id).where(
                Variant.shop_id == self.shop.id,
                Variant.inventory_item_id == ref.inventory_item_id,
            )
        )

    def _product_level_products(self, product_ids: set[str]) -> set[str]:
        keys = [product_item_id(pid) for pid in product_ids]
        if not keys:
            return set()
        found = self.session.scalars(
            select(Variant.inventory_item_id).where(
                Variant.shop_id == self.shop.id, Variant.inventory_item_id.in_(keys)
            )
        )
        return {str(_product_of_item(k)) for k in found}


def _line_ref(row: dict, product_level: set[str]) -> ev.VariantRef:
    product_id = str(row["product_id"])
    if product_id in product_level:
        return ev.VariantRef(inventory_item_id=product_item_id(product_id), product_id=product_id)
    variant_id = row.get("variant_id")
    return ev.VariantRef(variant_id=str(variant_id) if variant_id else None, product_id=product_id)


def _product_of_item(inventory_item_id: str | None) -> str | None:
    if inventory_item_id and inventory_item_id.startswith("product:"):
        return inventory_item_id[len("product:") :]
    return None


def _rfc2822(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _shared_read(key: str, fresh_after: datetime | None) -> list[dict] | None:
    """A read another job began after `fresh_after`, or None (also without Redis)."""
    redis = redis_connection.client
    if redis is None or fresh_after is None:
        return None
    raw = redis.get(key)
    if raw is None:
        return None
    shared = json.loads(raw)
    began = datetime.fromisoformat(shared["began"])
    return shared["items"] if began > fresh_after + CLOCK_SKEW else None


def _share_read(key: str, began: datetime, items: list[dict]) -> None:
    redis = redis_connection.client
    if redis is not None:
        value = json.dumps({"began": began.isoformat(), "items": items})
        redis.set(key, value, ex=SHARED_READ_TTL_S)


def _session_cache(session: Session) -> dict:
    cache = session.info.get(_CACHE_KEY)
    if cache is None:
        cache = session.info[_CACHE_KEY] = {}

        def clear(_session, transaction) -> None:
            # Only when the job's own transaction ends: a SAVEPOINT (the mirror uses them)
            # fires after_commit too, and must not throw away reads made for this job.
            if transaction.parent is None:
                cache.clear()

        event.listen(session, "after_transaction_end", clear)
    return cache
