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

One connector serves one unit of work: reads are kept on it until it is dropped.
"""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from connectors.base import CatalogPage, Credentials, KeyValueCache, ReauthorisationRequired
from connectors.bigcommerce import backorders, mapping, metafields
from connectors.bigcommerce.client import BigCommerceClient, NotFound, RequestRefused, api_base
from connectors.bigcommerce.registration import register_store
from domain import events as ev
from domain.badges import BadgePush, PushResult
from webhooks.bigcommerce import product_item_id

log = logging.getLogger(__name__)

PAGE_LIMIT = 250
ITEMS_LIMIT = 1000
ORDER_PRODUCTS_LIMIT = 250
ORDERS_LIMIT = 250
LOCATIONS_LIMIT = 1000
MAX_PAGES = 10_000
# V2 order status ids (`GET /v2/order_statuses`; merchants may relabel them, never renumber).
STATUS_INCOMPLETE = 0
STATUS_REFUNDED = 4
STATUS_CANCELLED = 5
STATUS_DECLINED = 6
# Nothing more of the order ships under these: checkout never finished (Incomplete, which
# `store/order/created` also fires for), the whole order refunded, cancelled, or declined.
NOTHING_MORE_SHIPS = frozenset(
    {STATUS_INCOMPLETE, STATUS_REFUNDED, STATUS_CANCELLED, STATUS_DECLINED}
)
# `min_date_modified` is read one second back (dates are whole seconds, and it is not said
# whether the bound is inclusive), so an order modified in the same second as the last one
# of a page is never skipped; orders read twice that way are yielded once.
MODIFIED_OVERLAP = timedelta(seconds=1)
# The store's control panel, as `GET /v2/store` gives it (`control_panel_base_url`).
CONTROL_PANEL = "https://store-{store_hash}.mybigcommerce.com"
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
        try:
            order = self.client.request("GET", f"/v2/orders/{order_id}")
        except NotFound:
            return None
        return self._order_facts(order, self._order_products(str(order.get("id") or order_id)))

    def orders_changed_since(self, since: datetime) -> Iterator[ev.OrderFacts]:
        """Orders modified at or after `since`, oldest change first, each with its products.

        `GET /v2/orders?min_date_modified=…&sort=date_modified:asc&limit=250` (one call per 250
        orders) and one products call per order. Paged by moving `min_date_modified` up to the
        last order read rather than by page number alone: an order modified while this runs
        moves to the end of the list, which with plain pages would shift an unread order onto
        a page already read. Page numbers only step through a full page of orders modified in
        the same second.
        """
        cursor = since.astimezone(UTC).replace(microsecond=0) - MODIFIED_OVERLAP
        page = 1
        yielded: dict[str, datetime | None] = {}
        for _ in range(MAX_PAGES):
            body = self.client.request(
                "GET",
                "/v2/orders",
                params={
                    "min_date_modified": email.utils.format_datetime(cursor),
                    "sort": "date_modified:asc",
                    "limit": ORDERS_LIMIT,
                    "page": page,
                },
            )
            rows = [row for row in body.get("data") or [] if isinstance(row, dict)]
            for row in rows:
                order_id = str(row["id"])
                modified = _rfc2822(row.get("date_modified"))
                if order_id in yielded and yielded[order_id] == modified:
                    continue  # read again at a page boundary, unchanged
                yielded[order_id] = modified
                yield self._order_facts(row, self._order_products(order_id))
            if len(rows) < ORDERS_LIMIT:
                return
            last = _rfc2822(rows[-1].get("date_modified"))
            if last is not None and last - MODIFIED_OVERLAP > cursor:
                cursor, page = last - MODIFIED_OVERLAP, 1
            else:
                page += 1

    def fetch_store(self) -> ev.StoreFacts:
        """`GET /v2/store`: the time zone every ETA is computed in, the default language, the
        country whose holidays close the store, its name, and the address for orders (the
        owner's address when the store has none)."""
        store = self.client.request("GET", "/v2/store")
        timezone = (store.get("timezone") or {}).get("name")
        country = str(store.get("country_code") or "").strip().upper()
        return ev.StoreFacts(
            timezone=timezone or None,
            locale=store.get("language") or None,
            country=country if len(country) == 2 else None,
            name=store.get("name") or None,
            contact_email=store.get("order_email") or store.get("admin_email") or None,
            storefront_origins=_origins(store.get("secure_url"), store.get("domain")),
            # The storefront's one language: BigCommerce stores publish a single one.
            published_locales=(store["language"],) if store.get("language") else (),
        )

    def push_storefront_config(self, config: dict) -> None:
        """The storefront script asks the badge API in the page's language: nothing to push."""

    def fetch_locations(self) -> list[ev.LocationFacts]:
        """The enabled locations and their labels: `GET /v3/inventory/locations` (one call per
        1,000 locations), which needs the `store_locations_read_only` scope. A store that has
        not granted it yet answers 403: names are a convenience, so that is not a reason to
        stop the sync or ask the merchant to re-approve the app; stock still counts by id.
        """
        found: list[ev.LocationFacts] = []
        for page in range(1, MAX_PAGES + 1):
            try:
                body = self.client.request(
                    "GET",
                    "/v3/inventory/locations",
                    params={"is_active": "true", "limit": LOCATIONS_LIMIT, "page": page},
                )
            except ReauthorisationRequired as exc:
                log.info("no location names for %s: %s", self.store_hash, exc)
                return found
            rows = [row for row in body.get("data") or [] if isinstance(row, dict)]
            found.extend(
                ev.LocationFacts(id=str(row["id"]), name=str(row.get("label") or "") or None)
                for row in rows
                if row.get("id") is not None and row.get("enabled", True) is not False
            )
            pagination = (body.get("meta") or {}).get("pagination") or {}
            if page >= int(pagination.get("total_pages") or 1):
                break
        return found

    def _order_products(self, order_id: str) -> list[dict]:
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
        return rows

    def _order_facts(self, order: dict, rows: list[dict]) -> ev.OrderFacts:
        """The V2 order and its products as the ledger's snapshot.

        Each line: `quantity` as ordered, `quantity_shipped` fulfilled, `quantity_refunded`
        refunded, and what is still on the order. BigCommerce does not say whether a refunded
        unit had shipped; refunds are taken from the unshipped units first, so refunding an
        unshipped backorder frees it, and a refund after shipping (a return) never un-ships a
        unit. A partial refund by amount (status Partially Refunded, no line refunded) takes
        nothing off. Under a status where nothing more ships (Incomplete, Refunded, Cancelled,
        Declined) or once the order is archived, only the shipped units stay on it; a refund
        by amount that moves the order to Refunded therefore frees its backorders too.
        Cancelled also sets `cancelled_at` (the order's `date_modified`).
        """
        order_id = str(order["id"])
        status = _int(order.get("status_id"))
        closed = status in NOTHING_MORE_SHIPS or order.get("is_deleted") is True
        updated_at = _rfc2822(order.get("date_modified"))
        lines = []
        for row in rows:
            if not row.get("product_id"):
                continue  # a custom product or gift certificate: nothing to mirror
            quantity = max(0, _int(row.get("quantity")) or 0)
            shipped = min(quantity, max(0, _int(row.get("quantity_shipped")) or 0))
            refunded = min(quantity, max(0, _int(row.get("quantity_refunded")) or 0))
            current = shipped if closed else max(quantity - refunded, shipped)
            lines.append(
                ev.OrderLine(
                    line_id=str(row["id"]),
                    variant=_line_ref(row),
                    quantity=quantity,
                    current_quantity=current,
                    fulfilled_quantity=shipped,
                    refunded_quantity=refunded,
                )
            )
        billing = order.get("billing_address") or {}
        name = " ".join(p for p in (billing.get("first_name"), billing.get("last_name")) if p)
        placed_at = _rfc2822(order.get("date_created")) or updated_at or _utcnow()
        return ev.OrderFacts(
            order_id=order_id,
            placed_at=placed_at,
            name=f"#{order_id}",
            customer=ev.Customer(
                email=billing.get("email") or None,
                name=name or None,
                locale=order.get("customer_locale") or None,
            ),
            lines=tuple(lines),
            cancelled_at=(updated_at or _utcnow()) if status == STATUS_CANCELLED else None,
            admin_url=f"{CONTROL_PANEL.format(store_hash=self.store_hash)}/manage/orders/{order_id}",
            updated_at=updated_at,
        )

    # -- writes ----------------------------------------------------------------------------

    def cancel_line(self, order_id: str, line_id: str) -> str:
        """Take one product off the order for a customer who asked: the V2 order update
        (`PUT /v2/orders/{id}`) with that order product's quantity set to 0. BigCommerce
        refunds nothing by itself: the merchant refunds the line."""
        body = {"products": [{"id": int(line_id), "quantity": 0}]}
        self.client.request("PUT", f"/v2/orders/{order_id}", json=body)
        return "product removed from the order on BigCommerce; refund it to the customer"

    def cancel_order(self, order_id: str) -> str:
        """Cancel the whole order: `PUT /v2/orders/{id}` with `status_id` 5 (Cancelled)."""
        self.client.request("PUT", f"/v2/orders/{order_id}", json={"status_id": STATUS_CANCELLED})
        return "order set to Cancelled on BigCommerce; refund the customer's payment"

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


def _line_ref(row: dict) -> ev.VariantRef:
    """The ordered variant, and the product's stock item in case the product is tracked at
    product level (then the mirror holds it under that key, not under the variant ordered)."""
    product_id = str(row["product_id"])
    variant_id = row.get("variant_id")
    return ev.VariantRef(
        variant_id=str(variant_id) if variant_id else None,
        inventory_item_id=product_item_id(product_id),
        product_id=product_id,
    )


def _product_of_item(inventory_item_id: str | None) -> str | None:
    if inventory_item_id and inventory_item_id.startswith("product:"):
        return inventory_item_id[len("product:") :]
    return None


def _int(value) -> int | None:
    """V2 documents some counts as `number` (`quantity_shipped`, `quantity_refunded`)."""
    try:
        return int(float(value)) if value is not None and value != "" else None
    except (TypeError, ValueError, OverflowError):
        return None


def _rfc2822(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # "-0000" parses naive; BigCommerce's dates are UTC either way.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _origins(secure_url: object, domain: object) -> tuple[str, ...]:
    """The storefront's origins: its secure URL's, and its (custom) domain's over HTTPS."""
    found: list[str] = []
    for url in (
        str(secure_url or ""),
        f"https://{domain}" if isinstance(domain, str) and domain else "",
    ):
        parts = urlsplit(url)
        if parts.scheme in ("https", "http") and parts.hostname:
            origin = f"{parts.scheme}://{parts.netloc.lower()}"
            if origin not in found:
                found.append(origin)
    return tuple(found)
