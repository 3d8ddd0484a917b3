"""A local stand-in for one Shopify store's GraphQL Admin API, on 127.0.0.1 only.

Used by the restock-storm bench and by the test that runs a real `rq worker` process (which
`responses` cannot reach). It behaves like Shopify where the app would notice:
- every document is validated against Shopify's Admin schema (2025-01) and refused if invalid;
- the X-Shopify-Access-Token must match, else 401;
- a leaky bucket per store (default 1,000 points, 100 restored per second): a request whose
  cost does not fit gets Shopify's THROTTLED error with `extensions.cost.throttleStatus`;
- metafieldsSet refuses more than 25 metafields; writes land in `self.metafields`;
- orders, put in as the REST resource the order webhooks carry (`put_order`), are read back
  through the app's order queries the way Shopify's GraphQL shows them (paged line items and
  fulfilments, `orders(query: "updated_at:>'…'")`), and the shop and its locales likewise.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from graphql import OperationDefinitionNode, build_client_schema, parse, validate

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "tests/fixtures/shopify/admin-schema-2025-01.json.gz"
MUTATION_COST = 10
QUERY_COST = 50


@dataclass
class FakeVariant:
    id: str
    inventory_item_id: str
    product_id: str
    title: str = "Default"
    sku: str = ""
    policy: str = "DENY"
    levels: dict[str, int] = field(default_factory=dict)


class FakeShopify:
    def __init__(
        self,
        token: str = "shpat_test",
        *,
        maximum: float = 1000.0,
        restore_rate: float = 100.0,
        clock=time.monotonic,
    ):
        self.token = token
        self.maximum = maximum
        self.restore_rate = restore_rate
        self.clock = clock
        self.available = maximum
        self.seen_at = clock()
        self.variants: dict[str, FakeVariant] = {}
        self.product_titles: dict[str, str] = {}
        self.metafields: dict[tuple[str, str, str], str] = {}
        # Orders as the REST resource (what order webhooks carry), by numeric id.
        self.orders: dict[str, dict] = {}
        # The badge metafield definitions: key -> storefront access.
        self.definitions: dict[str, str] = {}
        self.shop = {
            "name": "Backorder Demo",
            "ianaTimezone": "America/Los_Angeles",
            "contactEmail": "hello@backorder-demo.example",
            "billingAddress": {"countryCodeV2": "US"},
        }
        self.locales = [
            {"locale": "en", "primary": True},
            {"locale": "fr", "primary": False},
        ]
        # `locations(first: 250)`: the stores' locations as Location nodes (id, name, isActive).
        self.locations: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.throttled = 0
        self.lock = threading.Lock()
        with gzip.open(SCHEMA_PATH) as handle:
            self._schema = build_client_schema(json.load(handle)["data"])
        # graphql-core rejects two deprecation markers in Shopify's schema (a rule about the
        # schema itself, not about operations); see tests/test_shopify_graphql_schema.py.
        self._schema._validation_errors = []
        self._parsed: dict[str, tuple[str, str]] = {}
        self._server: ThreadingHTTPServer | None = None

    # Store contents -------------------------------------------------------------------------

    def add_variant(self, variant: FakeVariant, product_title: str = "Product") -> None:
        self.variants[variant.id] = variant
        self.product_titles.setdefault(variant.product_id, product_title)

    def put_order(self, payload: dict) -> None:
        """The order as it stands now, shaped as the orders/* webhooks send it."""
        self.orders[str(payload["id"])] = json.loads(json.dumps(payload))

    def badge(self, variant_id: str) -> dict[str, str]:
        owner = f"gid://shopify/ProductVariant/{variant_id}"
        return {k: v for (o, _ns, k), v in self.metafields.items() if o == owner}

    def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests if operation is None or r["operation"] == operation]

    # HTTP -------------------------------------------------------------------------------------

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, answer = fake.handle(self.path, dict(self.headers), body)
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        if not path.endswith("/admin/api/2025-01/graphql.json"):
            return 404, {"errors": "Not Found"}
        token = {k.lower(): v for k, v in headers.items()}.get("x-shopify-access-token")
        if token != self.token:
            return 401, {"errors": "[API] Invalid API key or access token (unrecognized login)"}
        request = json.loads(body)
        document, variables = request["query"], request.get("variables") or {}
        try:
            kind, operation = self._check(document)
        except ValueError as exc:
            return 200, {"errors": [{"message": str(exc)}]}
        cost = MUTATION_COST if kind == "mutation" else QUERY_COST
        with self.lock:
            self._restore()
            self.requests.append(
                {
                    "operation": operation,
                    "variables": variables,
                    "at": self.clock(),
                    "bucket": round(self.available, 2),
                }
            )
            if self.available < cost:
                self.throttled += 1
                return 200, {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ],
                    "extensions": {"cost": self._cost(cost, None)},
                }
            self.available -= cost
            data = self._resolve(operation, variables)
            return 200, {"data": data, "extensions": {"cost": self._cost(cost, cost)}}

    def _check(self, document: str) -> tuple[str, str]:
        if document not in self._parsed:
            ast = parse(document)
            errors = validate(self._schema, ast)
            if errors:
                raise ValueError("; ".join(e.message for e in errors))
            op = next(d for d in ast.definitions if isinstance(d, OperationDefinitionNode))
            self._parsed[document] = (op.operation.value, op.name.value if op.name else "")
        return self._parsed[document]

    def _restore(self) -> None:
        now = self.clock()
        restored = self.available + (now - self.seen_at) * self.restore_rate
        self.available = min(self.maximum, restored)
        self.seen_at = now

    def _cost(self, requested: int, actual: int | None) -> dict:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.maximum,
                "currentlyAvailable": int(self.available),
                "restoreRate": self.restore_rate,
            },
        }

    # Operations -------------------------------------------------------------------------------

    def _resolve(self, operation: str, variables: dict) -> dict:
        if operation in ("BadgeMetafieldsSet", "BadgeMetafieldsWrite"):
            data = {"metafieldsSet": self._set(variables["metafields"])}
            if operation == "BadgeMetafieldsWrite":
                data["metafieldsDelete"] = self._delete(variables["deletions"])
            return data
        if operation == "BadgeInventoryPolicy":
            updated = []
            for v in variables["variants"]:
                variant = self.variants[v["id"].rsplit("/", 1)[-1]]
                variant.policy = v["inventoryPolicy"]
                updated.append({"id": v["id"], "inventoryPolicy": variant.policy})
            return {"productVariantsBulkUpdate": {"productVariants": updated, "userErrors": []}}
        if operation == "BadgeProductByInventoryItem":
            item_id = variables["id"].rsplit("/", 1)[-1]
            matches = (v for v in self.variants.values() if v.inventory_item_id == item_id)
            variant = next(matches, None)
            product = self._product(variant.product_id) if variant else None
            return {"inventoryItem": {"variant": {"product": product}} if product else None}
        if operation == "BadgeProduct":
            return {"product": self._product(variables["id"].rsplit("/", 1)[-1])}
        if operation == "BadgeMetafieldDefinitions":
            nodes = [
                {
                    "id": f"gid://shopify/MetafieldDefinition/{n}",
                    "key": key,
                    "access": {"storefront": access},
                }
                for n, (key, access) in enumerate(sorted(self.definitions.items()), start=1)
            ]
            return {"metafieldDefinitions": {"nodes": nodes}}
        if operation in ("BadgeMetafieldDefinitionCreate", "BadgeMetafieldDefinitionUpdate"):
            definition = variables["definition"]
            key = definition["key"]
            self.definitions[key] = definition["access"]["storefront"]
            done = {"id": f"gid://shopify/MetafieldDefinition/{key}", "key": key}
            if operation.endswith("Create"):
                return {"metafieldDefinitionCreate": {"createdDefinition": done, "userErrors": []}}
            return {"metafieldDefinitionUpdate": {"updatedDefinition": done, "userErrors": []}}
        if operation == "BadgeCatalogPage":
            ids = sorted({v.product_id for v in self.variants.values()}, key=int)
            products = [self._product(pid) for pid in ids]
            page = _page(products, CATALOG_PAGE, variables.get("after"))
            return {"productsCount": {"count": len(ids)}, "products": page}
        if operation == "BackorderOrder":
            order = self.orders.get(_numeric(variables["id"]))
            return {"order": _order_node(order) if order else None}
        if operation == "BackorderOrdersChanged":
            return {"orders": self._orders_changed(variables)}
        if operation == "BackorderOrderLines":
            order = self.orders.get(_numeric(variables["id"]))
            if order is None:
                return {"order": None}
            items = [_line_node(i, order) for i in order.get("line_items") or []]
            return {"order": {"lineItems": _page(items, 50, variables.get("after"))}}
        if operation == "BackorderOrderFulfillments":
            order = self.orders.get(_numeric(variables["id"]))
            fulfillments = (order or {}).get("fulfillments") or []
            return {
                "order": {"fulfillments": [_fulfillment_head(f) for f in fulfillments[:250]]}
                if order
                else None
            }
        if operation == "BackorderFulfillmentLines":
            wanted = _numeric(variables["id"])
            for order in self.orders.values():
                for f in order.get("fulfillments") or []:
                    if str(f["id"]) == wanted:
                        lines = [_fulfilled_node(i) for i in f.get("line_items") or []]
                        page = _page(lines, 50, variables.get("after"))
                        return {"fulfillment": {"fulfillmentLineItems": page}}
            return {"fulfillment": None}
        if operation == "BackorderStore":
            return {"shop": self.shop}
        if operation == "BackorderStoreLocales":
            return {"shopLocales": self.locales}
        if operation == "BackorderStorefrontConfig":
            shop_gid, key = "gid://shopify/Shop/1", variables["key"]
            value = self.metafields.get((shop_gid, variables["namespace"], key))
            found = [
                {
                    "id": f"gid://shopify/MetafieldDefinition/{key}",
                    "key": key,
                    "access": {"storefront": access},
                }
                for k, access in self.definitions.items()
                if k == key
            ]
            return {
                "shop": {
                    "id": shop_gid,
                    "metafield": {"jsonValue": json.loads(value)} if value else None,
                },
                "metafieldDefinitions": {"nodes": found},
            }
        if operation == "BackorderLocations":
            return {"locations": {"nodes": self.locations}}
        raise ValueError(f"the fake store does not serve {operation}")

    def _orders_changed(self, variables: dict) -> dict:
        # The app's only search: updated_at:>'2026-11-20T12:00:00Z'.
        query = variables["query"]
        if not query.startswith("updated_at:>'") or not query.endswith("'"):
            raise ValueError(f"the fake store cannot search {query!r}")
        since = _time(query[len("updated_at:>'") : -1])
        changed = sorted(
            (o for o in self.orders.values() if _time(o["updated_at"]) > since),
            key=lambda o: (_time(o["updated_at"]), int(o["id"])),
        )
        return _page([_order_node(o) for o in changed], ORDERS_PAGE, variables.get("after"))

    def _set(self, metafields: list[dict]) -> dict:
        if len(metafields) > 25:
            error = {
                "field": ["metafields"],
                "message": "Exceeded the maximum metafields input limit of 25.",
                "code": "LESS_THAN_OR_EQUAL_TO",
                "elementIndex": None,
            }
            return {"metafields": [], "userErrors": [error]}
        for m in metafields:
            self.metafields[(m["ownerId"], m["namespace"], m["key"])] = m["value"]
        return {
            "metafields": [
                {
                    "id": f"gid://shopify/Metafield/{abs(hash(m['ownerId'] + m['key']))}",
                    "namespace": m["namespace"],
                    "key": m["key"],
                }
                for m in metafields
            ],
            "userErrors": [],
        }

    def _delete(self, identifiers: list[dict]) -> dict:
        deleted = []
        for m in identifiers:
            key = (m["ownerId"], m["namespace"], m["key"])
            deleted.append(m if self.metafields.pop(key, None) is not None else None)
        return {"deletedMetafields": deleted, "userErrors": []}

    def _product(self, product_id: str) -> dict | None:
        variants = [v for v in self.variants.values() if v.product_id == product_id]
        if not variants:
            return None
        return {
            "id": f"gid://shopify/Product/{product_id}",
            "title": self.product_titles.get(product_id, ""),
            "variants": {
                "pageInfo": {"hasNextPage": False, "endCursor": None},
                "nodes": [
                    {
                        "id": f"gid://shopify/ProductVariant/{v.id}",
                        "sku": v.sku,
                        "title": v.title,
                        "inventoryPolicy": v.policy,
                        "inventoryItem": {
                            "id": f"gid://shopify/InventoryItem/{v.inventory_item_id}",
                            "tracked": True,
                            "inventoryLevels": {
                                "pageInfo": {"hasNextPage": False, "endCursor": None},
                                "nodes": [
                                    {
                                        "location": {"id": f"gid://shopify/Location/{loc}"},
                                        "quantities": [{"name": "available", "quantity": qty}],
                                    }
                                    for loc, qty in v.levels.items()
                                ],
                            },
                        },
                    }
                    for v in variants
                ],
            },
        }


# What the app's order documents ask for per page (connectors/shopify/queries.py).
ORDER_LINES_PAGE = 20
ORDER_FULFILLMENTS_PAGE = 5
ORDERS_PAGE = 3
CATALOG_PAGE = 5


def _numeric(gid: str) -> str:
    return str(gid).rsplit("/", 1)[-1]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _graphql_time(value: str | None) -> str | None:
    return _time(value).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _page(nodes: list, size: int, after: str | None) -> dict:
    start = int(after) if after else 0
    end = start + size
    return {
        "pageInfo": {"hasNextPage": end < len(nodes), "endCursor": str(min(end, len(nodes)))},
        "nodes": nodes[start:end],
    }


def _refunded(order: dict) -> dict[str, int]:
    units: dict[str, int] = {}
    for refund in order.get("refunds") or []:
        for item in refund.get("refund_line_items") or []:
            key = str(item["line_item_id"])
            units[key] = units.get(key, 0) + int(item["quantity"])
    return units


def _line_node(item: dict, order: dict) -> dict:
    """A REST line item as GraphQL's LineItem shows it."""
    quantity = int(item["quantity"])
    current = item.get("current_quantity")
    return {
        "id": f"gid://shopify/LineItem/{item['id']}",
        "quantity": quantity,
        "currentQuantity": quantity if current is None else int(current),
        "refundableQuantity": quantity - _refunded(order).get(str(item["id"]), 0),
        "variant": {"id": f"gid://shopify/ProductVariant/{item['variant_id']}"}
        if item.get("variant_id")
        else None,
        "product": {"id": f"gid://shopify/Product/{item['product_id']}"}
        if item.get("product_id")
        else None,
    }


def _fulfillment_head(fulfillment: dict) -> dict:
    return {
        "id": f"gid://shopify/Fulfillment/{fulfillment['id']}",
        "status": str(fulfillment.get("status") or "success").upper(),
    }


def _fulfilled_node(item: dict) -> dict:
    return {
        "quantity": int(item["quantity"]),
        "lineItem": {"id": f"gid://shopify/LineItem/{item['id']}"},
    }


def _order_node(order: dict) -> dict:
    """A REST order as GraphQL's Order shows it to the app's BackorderOrderFields."""
    customer = order.get("customer")
    items = [_line_node(i, order) for i in order.get("line_items") or []]
    fulfillments = order.get("fulfillments") or []
    return {
        "id": f"gid://shopify/Order/{order['id']}",
        "name": order.get("name") or "",
        "createdAt": _graphql_time(order["created_at"]),
        "updatedAt": _graphql_time(order["updated_at"]),
        "cancelledAt": _graphql_time(order.get("cancelled_at")),
        "email": order.get("email"),
        "customerLocale": order.get("customer_locale"),
        "customer": {"firstName": customer.get("first_name"), "lastName": customer.get("last_name")}
        if customer
        else None,
        "lineItems": _page(items, ORDER_LINES_PAGE, None),
        "fulfillmentsCount": {"count": len(fulfillments)},
        "fulfillments": [
            {
                **_fulfillment_head(f),
                "fulfillmentLineItems": _page(
                    [_fulfilled_node(i) for i in f.get("line_items") or []], ORDER_LINES_PAGE, None
                ),
            }
            for f in fulfillments[:ORDER_FULFILLMENTS_PAGE]
        ],
    }
