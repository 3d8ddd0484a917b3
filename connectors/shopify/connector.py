"""The Shopify connector: reads variants and stock, writes badges as app-owned metafields.

Ids: the app keeps Shopify's numeric ids (the ones webhooks carry, as strings) for products,
variants, inventory items and locations, and turns them into GIDs only at the API's edge. So a
level read here is stored under the same location id that inventory_levels/update sends, and
StoreSettings.location_ids holds numeric location ids too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.base import CatalogPage, ConnectorError
from connectors.shopify import queries
from connectors.shopify.graphql import ShopifyGraphQL
from domain.badges import AppliedPolicy, BadgePush, PushResult
from domain.events import (
    Customer,
    LocationFacts,
    OrderFacts,
    OrderLine,
    ProductFacts,
    StoreFacts,
    VariantFacts,
    VariantRef,
)
from webhooks.shopify import admin_url
from webhooks.source import parse_timestamp


def gid(kind: str, numeric_id: str) -> str:
    return f"gid://shopify/{kind}/{numeric_id}"


def numeric_id(value: str) -> str:
    """`gid://shopify/Location/24826418` (or `...?inventory_item_id=...`) → `24826418`."""
    return value.rsplit("/", 1)[-1].split("?", 1)[0]


class ShopifyConnector:
    platform = "shopify"

    def __init__(self, client: ShopifyGraphQL):
        self.client = client

    # Reading -----------------------------------------------------------------------------

    def fetch_product(
        self, product_id: str, fresh_after: datetime | None = None
    ) -> ProductFacts | None:
        data = self.client.execute(queries.PRODUCT, {"id": gid("Product", product_id)})
        return self._facts(data.get("product"))

    def resolve_variant(
        self, ref: VariantRef, fresh_after: datetime | None = None
    ) -> ProductFacts | None:
        if ref.inventory_item_id:
            data = self.client.execute(
                queries.PRODUCT_BY_INVENTORY_ITEM,
                {"id": gid("InventoryItem", ref.inventory_item_id)},
            )
            item = data.get("inventoryItem") or {}
            return self._facts((item.get("variant") or {}).get("product"))
        if ref.variant_id:
            data = self.client.execute(
                queries.PRODUCT_BY_VARIANT, {"id": gid("ProductVariant", ref.variant_id)}
            )
            return self._facts((data.get("productVariant") or {}).get("product"))
        if ref.product_id:
            return self.fetch_product(ref.product_id)
        return None

    def fetch_level(
        self, ref: VariantRef, location_id: str, fresh_after: datetime | None = None
    ) -> int | None:
        location = gid("Location", location_id)
        if ref.inventory_item_id:
            data = self.client.execute(
                queries.LEVEL_BY_INVENTORY_ITEM,
                {"id": gid("InventoryItem", ref.inventory_item_id), "locationId": location},
            )
            item = data.get("inventoryItem")
        elif ref.variant_id:
            data = self.client.execute(
                queries.LEVEL_BY_VARIANT,
                {"id": gid("ProductVariant", ref.variant_id), "locationId": location},
            )
            item = (data.get("productVariant") or {}).get("inventoryItem")
        else:
            return None
        level = (item or {}).get("inventoryLevel")
        return _available(level) if level else None

    def fetch_order(self, order_id: str) -> OrderFacts | None:
        """The order as Shopify has it now (refunds/create and orders/edited name it only, and
        reconciliation re-reads the orders still owed); None once it no longer exists."""
        data = self.client.execute(
            queries.ORDER,
            {"id": gid("Order", order_id)},
            redactable=queries.REDACTABLE_ORDER_FIELDS,
        )
        order = data.get("order")
        return self._order_facts(order) if order else None

    def orders_changed_since(self, since: datetime) -> Iterator[OrderFacts]:
        """Every order Shopify changed after `since`, oldest change first.

        Without the read_all_orders scope Shopify only shows the last 60 days of orders."""
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        variables: dict[str, Any] = {"query": f"updated_at:>'{stamp}'", "after": None}
        while True:
            data = self.client.execute(
                queries.ORDERS_CHANGED, variables, redactable=queries.REDACTABLE_ORDER_FIELDS
            )
            orders = data.get("orders") or {}
            for order in orders.get("nodes") or []:
                yield self._order_facts(order)
            page = orders.get("pageInfo") or {}
            if not page.get("hasNextPage"):
                return
            variables = {**variables, "after": page["endCursor"]}

    def fetch_store(self) -> StoreFacts:
        shop = self.client.execute(queries.STORE).get("shop") or {}
        # A shop that has not granted read_locales yet still gets its time zone and country.
        locales = self.client.execute(
            queries.STORE_LOCALES, redactable=frozenset({"shopLocales"})
        ).get("shopLocales")
        primary = next((loc for loc in locales or [] if loc.get("primary")), None)
        published = [loc["locale"] for loc in locales or [] if loc.get("locale")]
        published.sort(key=lambda locale: locale != (primary or {}).get("locale"))
        return StoreFacts(
            timezone=shop.get("ianaTimezone") or None,
            locale=(primary or {}).get("locale") or None,
            country=(shop.get("billingAddress") or {}).get("countryCodeV2") or None,
            name=shop.get("name") or None,
            contact_email=shop.get("contactEmail") or None,
            published_locales=tuple(published),
        )

    def fetch_locations(self) -> list[LocationFacts]:
        """The active locations and their names: one query (`locations(first: 250)`)."""
        nodes = (self.client.execute(queries.LOCATIONS).get("locations") or {}).get("nodes")
        return [
            LocationFacts(id=numeric_id(node["id"]), name=node.get("name") or None)
            for node in nodes or []
            if node.get("id") and node.get("isActive") is not False
        ]

    def _order_facts(self, order: dict) -> OrderFacts:
        order_id = numeric_id(order["id"])
        customer = order.get("customer") or {}
        name = " ".join(p for p in (customer.get("firstName"), customer.get("lastName")) if p)
        items = self._all_line_items(order)
        shipped = self._fulfilled_units(order)
        lines = []
        for item in items:
            variant = item.get("variant")
            if not variant:
                continue  # a custom item, a tip or a deleted variant: nothing to badge
            product = item.get("product")
            line_id = numeric_id(item["id"])
            quantity = int(item.get("quantity") or 0)
            lines.append(
                OrderLine(
                    line_id=line_id,
                    variant=VariantRef(
                        variant_id=numeric_id(variant["id"]),
                        product_id=numeric_id(product["id"]) if product else None,
                    ),
                    quantity=quantity,
                    current_quantity=int(item.get("currentQuantity") or 0),
                    fulfilled_quantity=shipped.get(line_id, 0),
                    # Units ordered minus units refunded (LineItem.refundableQuantity).
                    refunded_quantity=max(0, quantity - int(item.get("refundableQuantity") or 0)),
                )
            )
        placed_at = parse_timestamp(order.get("createdAt"))
        if placed_at is None:
            raise ConnectorError(f"Shopify order {order_id} has no createdAt")
        return OrderFacts(
            order_id=order_id,
            placed_at=placed_at,
            updated_at=parse_timestamp(order.get("updatedAt")),
            name=order.get("name") or "",
            customer=Customer(
                email=order.get("email") or None,
                name=name or None,
                locale=order.get("customerLocale") or None,
            ),
            lines=tuple(lines),
            cancelled_at=parse_timestamp(order.get("cancelledAt")),
            admin_url=admin_url(self.client.shop_domain, order_id),
        )

    def _all_line_items(self, order: dict) -> list[dict]:
        connection = order.get("lineItems") or {}
        items = list(connection.get("nodes") or [])
        page = connection.get("pageInfo") or {}
        while page.get("hasNextPage"):
            data = self.client.execute(
                queries.ORDER_LINES_PAGE, {"id": order["id"], "after": page["endCursor"]}
            )
            connection = (data.get("order") or {}).get("lineItems") or {}
            items.extend(connection.get("nodes") or [])
            page = connection.get("pageInfo") or {}
        return items

    def _fulfilled_units(self, order: dict) -> dict[str, int]:
        """Units shipped per line: its units in every fulfilment that did not fail or get
        cancelled, reading past the first page of fulfilments and of their lines."""
        fulfillments = list(order.get("fulfillments") or [])
        total = (order.get("fulfillmentsCount") or {}).get("count")
        if total is not None and int(total) > len(fulfillments):
            data = self.client.execute(queries.ORDER_FULFILLMENTS, {"id": order["id"]})
            read = {f["id"]: f for f in fulfillments}
            fulfillments = [
                read.get(f["id"], f) for f in ((data.get("order") or {}).get("fulfillments") or [])
            ]
        units: dict[str, int] = {}
        for fulfillment in fulfillments:
            if str(fulfillment.get("status") or "").upper() in NOT_SHIPPED:
                continue
            for item in self._fulfillment_lines(fulfillment):
                key = numeric_id(item["lineItem"]["id"])
                units[key] = units.get(key, 0) + int(item.get("quantity") or 0)
        return units

    def _fulfillment_lines(self, fulfillment: dict) -> list[dict]:
        connection = fulfillment.get("fulfillmentLineItems")
        if connection is None:  # listed beyond the first page: its lines are not read yet
            page: dict = {"hasNextPage": True, "endCursor": None}
            items: list[dict] = []
        else:
            items = list(connection.get("nodes") or [])
            page = connection.get("pageInfo") or {}
        while page.get("hasNextPage"):
            data = self.client.execute(
                queries.FULFILLMENT_LINES_PAGE,
                {"id": fulfillment["id"], "after": page.get("endCursor")},
            )
            connection = (data.get("fulfillment") or {}).get("fulfillmentLineItems") or {}
            items.extend(connection.get("nodes") or [])
            page = connection.get("pageInfo") or {}
        return items

    def iter_catalog(self, cursor: str | None = None) -> Iterator[CatalogPage]:
        after = cursor
        while True:
            data = self.client.execute(queries.CATALOG_PAGE, {"after": after})
            products = data.get("products") or {}
            page_info = products.get("pageInfo") or {}
            more = bool(page_info.get("hasNextPage"))
            after = page_info.get("endCursor") if more else None
            facts = [f for f in (self._facts(node) for node in products.get("nodes") or []) if f]
            total = (data.get("productsCount") or {}).get("count")
            yield CatalogPage(facts, after, total)
            if not more:
                return

    def _facts(self, product: dict | None) -> ProductFacts | None:
        if not product:
            return None
        variants = self._all_variants(product)
        return ProductFacts(
            platform_id=numeric_id(product["id"]),
            title=product.get("title") or "",
            variants=tuple(self._variant_facts(v) for v in variants),
        )

    def _all_variants(self, product: dict) -> list[dict]:
        """Every variant, following the variants connection past its first page."""
        connection = product.get("variants") or {}
        variants = list(connection.get("nodes") or [])
        page = connection.get("pageInfo") or {}
        while page.get("hasNextPage"):
            data = self.client.execute(
                queries.PRODUCT_VARIANTS_PAGE, {"id": product["id"], "after": page["endCursor"]}
            )
            connection = (data.get("product") or {}).get("variants") or {}
            variants.extend(connection.get("nodes") or [])
            page = connection.get("pageInfo") or {}
        return variants

    def _variant_facts(self, variant: dict) -> VariantFacts:
        item = variant.get("inventoryItem") or {}
        variant_id = numeric_id(variant["id"])
        return VariantFacts(
            platform_id=variant_id,
            sku=variant.get("sku") or "",
            title=variant.get("title") or "",
            inventory_item_id=numeric_id(item["id"]) if item.get("id") else None,
            tracked=bool(item.get("tracked", True)),
            sells_past_zero=variant.get("inventoryPolicy") == "CONTINUE",
            levels=self._levels(item) if item else {},
        )

    def _levels(self, item: dict) -> dict[str, int]:
        connection = item.get("inventoryLevels") or {}
        nodes = list(connection.get("nodes") or [])
        page = connection.get("pageInfo") or {}
        while page.get("hasNextPage"):
            data = self.client.execute(
                queries.INVENTORY_LEVELS_PAGE, {"id": item["id"], "after": page["endCursor"]}
            )
            connection = (data.get("inventoryItem") or {}).get("inventoryLevels") or {}
            nodes.extend(connection.get("nodes") or [])
            page = connection.get("pageInfo") or {}
        return {numeric_id(n["location"]["id"]): _available(n) for n in nodes}

    # Writing -----------------------------------------------------------------------------

    def prepare_store(self) -> None:
        """Make the badge metafields readable by the theme app extension.

        Liquid reads an app-owned metafield only where its definition grants storefront
        access, so each badge key gets a PRODUCTVARIANT definition with PUBLIC_READ. Run on
        install and by every reconciliation, so a definition the merchant deleted comes back.
        """
        namespace = queries.METAFIELD_NAMESPACE
        data = self.client.execute(queries.BADGE_DEFINITIONS, {"namespace": namespace})
        existing = {
            node["key"]: node
            for node in ((data.get("metafieldDefinitions") or {}).get("nodes") or [])
        }
        for key, name in queries.BADGE_DEFINITION_NAMES.items():
            access = {"admin": "MERCHANT_READ", "storefront": "PUBLIC_READ"}
            identity = {"namespace": namespace, "key": key, "ownerType": "PRODUCTVARIANT"}
            node = existing.get(key)
            if node is None:
                definition = {**identity, "name": name, "type": queries.METAFIELD_TYPES[key]}
                result = self.client.execute(
                    queries.BADGE_DEFINITION_CREATE,
                    {"definition": {**definition, "access": access}},
                )
                _raise_user_errors(
                    "metafieldDefinitionCreate", result.get("metafieldDefinitionCreate")
                )
            elif (node.get("access") or {}).get("storefront") != "PUBLIC_READ":
                result = self.client.execute(
                    queries.BADGE_DEFINITION_UPDATE,
                    {"definition": {**identity, "access": access}},
                )
                _raise_user_errors(
                    "metafieldDefinitionUpdate", result.get("metafieldDefinitionUpdate")
                )

    def push_storefront_config(self, config: dict) -> None:
        """Write the labels per language and the colours to the app-owned shop metafield the
        theme block reads (`shop.metafields['$app:backorder'].storefront`).

        One read gives the shop's GID, the value already there and the SHOP definition that
        grants the theme storefront read access (created or updated when missing); the value
        is written only when it differs, so a reconciliation of an unchanged store reads once.
        """
        namespace, key = queries.METAFIELD_NAMESPACE, queries.KEY_STOREFRONT
        data = self.client.execute(queries.STOREFRONT_CONFIG, {"namespace": namespace, "key": key})
        shop = data.get("shop") or {}
        if not shop.get("id"):
            raise ConnectorError("Shopify did not name the shop to write its storefront labels")
        nodes = (data.get("metafieldDefinitions") or {}).get("nodes") or []
        access = {"admin": "MERCHANT_READ", "storefront": "PUBLIC_READ"}
        identity = {"namespace": namespace, "key": key, "ownerType": "SHOP"}
        if not nodes:
            definition = {**identity, "name": "Backorder badge storefront", "type": "json"}
            result = self.client.execute(
                queries.BADGE_DEFINITION_CREATE, {"definition": {**definition, "access": access}}
            )
            _raise_user_errors("metafieldDefinitionCreate", result.get("metafieldDefinitionCreate"))
        elif (nodes[0].get("access") or {}).get("storefront") != "PUBLIC_READ":
            result = self.client.execute(
                queries.BADGE_DEFINITION_UPDATE, {"definition": {**identity, "access": access}}
            )
            _raise_user_errors("metafieldDefinitionUpdate", result.get("metafieldDefinitionUpdate"))
        if (shop.get("metafield") or {}).get("jsonValue") == config:
            return
        write = {
            "ownerId": shop["id"],
            "namespace": namespace,
            "key": key,
            "type": "json",
            "value": json.dumps(config, ensure_ascii=False, sort_keys=True),
        }
        data = self.client.execute(queries.METAFIELDS_SET, {"metafields": [write]})
        _raise_user_errors("metafieldsSet", data.get("metafieldsSet"))

    def push_badges(self, pushes: Sequence[BadgePush]) -> PushResult:
        """Policies first (a badge must not promise a backorder the store would refuse), then
        the metafields, at most 25 per metafieldsSet call with each variant's set kept whole."""
        result = PushResult(self._write_policies(pushes))
        groups = [self._metafields(push) for push in pushes]
        for writes, deletions in _packed(groups, queries.METAFIELDS_PER_CALL):
            if deletions:
                data = self.client.execute(
                    queries.METAFIELDS_SET_AND_DELETE,
                    {"metafields": writes, "deletions": deletions},
                )
                _raise_user_errors("metafieldsDelete", data.get("metafieldsDelete"))
            else:
                data = self.client.execute(queries.METAFIELDS_SET, {"metafields": writes})
            _raise_user_errors("metafieldsSet", data.get("metafieldsSet"))
        return result

    @staticmethod
    def _metafields(push: BadgePush) -> tuple[list[dict], list[dict]]:
        """One variant's metafields to set, and the ones to delete (Shopify refuses blanks)."""
        values = {
            queries.KEY_STATE: push.state,
            queries.KEY_LABEL: push.label,
            queries.KEY_ETA: push.eta.isoformat() if push.eta else "",
        }
        owner = gid("ProductVariant", push.variant_platform_id)
        writes, deletions = [], []
        for key, value in values.items():
            identity = {"ownerId": owner, "namespace": queries.METAFIELD_NAMESPACE, "key": key}
            if value:
                writes.append({**identity, "type": queries.METAFIELD_TYPES[key], "value": value})
            else:
                deletions.append(identity)
        return writes, deletions

    def cancel_line(self, order_id: str, line_id: str) -> str:
        """Take a line off the order for a customer who asked: orderEditBegin, then
        orderEditSetQuantity(quantity: 0, restock: true) and orderEditCommit. Shopify refunds
        nothing by itself here: the merchant refunds what the customer paid for the line."""
        note = "Removed at the customer's request (backorder cancel link)"
        begun = self.client.execute(queries.ORDER_EDIT_BEGIN, {"id": gid("Order", order_id)})
        payload = begun.get("orderEditBegin")
        _raise_user_errors("orderEditBegin", payload)
        calculated = payload.get("calculatedOrder") or {}
        edit_id = calculated.get("id")
        item = next(
            (
                node
                for node in ((calculated.get("lineItems") or {}).get("nodes") or [])
                if numeric_id(node.get("id") or "") == line_id
            ),
            None,
        )
        if not edit_id or item is None:
            raise ConnectorError(f"line {line_id} is not editable on order {order_id}")
        data = self.client.execute(
            queries.ORDER_EDIT_SET_QUANTITY, {"id": edit_id, "lineItemId": item["id"]}
        )
        _raise_user_errors("orderEditSetQuantity", data.get("orderEditSetQuantity"))
        data = self.client.execute(queries.ORDER_EDIT_COMMIT, {"id": edit_id, "staffNote": note})
        _raise_user_errors("orderEditCommit", data.get("orderEditCommit"))
        return "line removed from the order on Shopify and restocked; refund it to the customer"

    def cancel_order(self, order_id: str) -> str:
        """Cancel the whole order: orderCancel with a full refund, restocked, customer told."""
        data = self.client.execute(
            queries.ORDER_CANCEL,
            {
                "orderId": gid("Order", order_id),
                "staffNote": "Cancelled at the customer's request (backorder cancel link)",
            },
        )
        payload = data.get("orderCancel")
        if payload is None:
            raise ConnectorError("orderCancel returned no payload")
        errors = payload.get("orderCancelUserErrors") or []
        if errors:
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
            raise ConnectorError(f"orderCancel refused: {detail}")
        return "order cancelled on Shopify with a full refund and restock"

    def _write_policies(self, pushes: Sequence[BadgePush]) -> dict[str, AppliedPolicy | None]:
        """Enforce CONTINUE/DENY where the store chose automatic backorders; put the merchant's
        own policy back on variants the app changed once it no longer enforces one.

        Returns what changed in what the app holds over the merchant's policy, per variant."""
        changed: dict[str, AppliedPolicy | None] = {}
        by_product: dict[str, list[dict[str, str]]] = {}
        for push in pushes:
            variant_id = push.variant_platform_id
            merchant = "CONTINUE" if push.merchant_sells_past_zero else "DENY"
            mine = push.applied_policy
            if push.enforced_policy in ("continue", "deny"):
                target = push.enforced_policy.upper()
                if target == (mine or merchant):
                    continue  # the store already has it
                changed[variant_id] = AppliedPolicy(app=target, merchant=merchant)
            elif mine is not None:
                target = merchant
                changed[variant_id] = None
                if target == mine:
                    continue
            else:
                continue
            by_product.setdefault(push.product_platform_id, []).append(
                {"id": gid("ProductVariant", variant_id), "inventoryPolicy": target}
            )
        for product_id, variants in by_product.items():
            data = self.client.execute(
                queries.INVENTORY_POLICY_UPDATE,
                {"productId": gid("Product", product_id), "variants": variants},
            )
            _raise_user_errors("productVariantsBulkUpdate", data.get("productVariantsBulkUpdate"))
        return changed


def _packed(groups: list[tuple[list, list]], limit: int) -> Iterator[tuple[list, list]]:
    """Fill each call with up to `limit` metafields to set, never splitting one variant's
    badge across calls (so 8 variants x 3 metafields = 24 per call)."""
    writes: list[dict[str, Any]] = []
    deletions: list[dict[str, Any]] = []
    for group_writes, group_deletions in groups:
        if writes and len(writes) + len(group_writes) > limit:
            yield writes, deletions
            writes, deletions = [], []
        writes.extend(group_writes)
        deletions.extend(group_deletions)
    if writes or deletions:
        yield writes, deletions


# Fulfilments that shipped nothing (GraphQL FulfillmentStatus).
NOT_SHIPPED = frozenset({"CANCELLED", "ERROR", "FAILURE"})


def _available(level: dict) -> int:
    for quantity in level.get("quantities") or []:
        if quantity.get("name") == "available":
            return int(quantity.get("quantity") or 0)
    return 0


def _raise_user_errors(mutation: str, payload: dict | None) -> None:
    if payload is None:
        raise ConnectorError(f"{mutation} returned no payload")
    errors = payload.get("userErrors") or []
    if errors:
        detail = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
        raise ConnectorError(f"{mutation} refused {len(errors)} write(s): {detail}")
