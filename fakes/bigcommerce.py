"""A local stand-in for BigCommerce's V3 API (and the V2 order and store reads), on 127.0.0.1 only.

Shaped as BigCommerce documents the endpoints the connector uses, with the store's shared rate
limit enforced the way BigCommerce does it: a fixed window of `quota` requests per `window_ms`,
`X-Rate-Limit-*` headers on every answer, and 429 (with `X-Rate-Limit-Time-Reset-Ms`) once the
window is spent. Used by the worker test (a real `rq worker` subprocess cannot be intercepted by
`responses`) and by `bench/restock_storm_bigcommerce.py`.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def store_information(**overrides) -> dict:
    """GET /v2/store as BigCommerce documents it (the fields the app reads, and a few more)."""
    return {
        "id": "fakestore",
        "domain": "fake.example",
        "secure_url": "https://fake.example",
        "control_panel_base_url": "https://store-fakestore.mybigcommerce.com",
        "status": "live",
        "name": "Fake store",
        "country": "United States",
        "country_code": "US",
        "admin_email": "owner@fake.example",
        "order_email": "orders@fake.example",
        "timezone": {
            "name": "Etc/UTC",
            "raw_offset": 0,
            "dst_offset": 0,
            "dst_correction": False,
            "date_format": {"display": "M jS Y", "export": "M jS Y", "extended_display": "M jS Y"},
        },
        "language": "en",
        "currency": "USD",
        **overrides,
    }


def _when(value: str) -> datetime:
    """An RFC 2822 or ISO 8601 date, as V2 filters accept them."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class FakeStore:
    store_hash: str
    token: str
    quota: int = 150
    window_ms: int = 30_000
    # product id -> V3 product (with "variants"); levels: variant id -> {location id: qty}
    products: dict[int, dict] = field(default_factory=dict)
    levels: dict[int, dict[int, int]] = field(default_factory=dict)
    # V2 orders and their products, as GET /v2/orders/{id} and /products answer them.
    orders: dict[int, dict] = field(default_factory=dict)
    order_products: dict[int, list[dict]] = field(default_factory=dict)
    store: dict = field(default_factory=store_information)
    metafields: dict[str, dict[int, dict]] = field(
        default_factory=lambda: {"variants": {}, "products": {}}
    )
    # Webhook subscriptions and storefront scripts, as /v3/hooks and /v3/content/scripts keep them.
    hooks: dict[int, dict] = field(default_factory=dict)
    scripts: dict[str, dict] = field(default_factory=dict)
    # GET /v3/inventory/locations: every store has location 1.
    locations: dict[int, dict] = field(
        default_factory=lambda: {
            1: {"id": 1, "code": "BIGC-1", "label": "Default location", "enabled": True}
        }
    )
    calls: Counter = field(default_factory=Counter)
    rate_limited: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _window_start: float = 0.0
    _used: int = 0
    _next_id: int = 1000
    # Requests still to refuse with 429 as if other apps on the store had spent the quota.
    other_apps_burst: int = 0

    def add_product(self, product_id: int, name: str, variant_ids: list[int], tracking="variant"):
        variants = [
            {
                "id": vid,
                "product_id": product_id,
                "sku": f"SKU-{vid}",
                "inventory_level": 0,
                "purchasing_disabled": False,
                "option_values": [{"label": f"Option {vid}", "option_display_name": "Size"}],
            }
            for vid in variant_ids
        ]
        self.products[product_id] = {
            "id": product_id,
            "name": name,
            "sku": f"P-{product_id}",
            "inventory_tracking": tracking,
            "inventory_level": 0,
            "availability": "available",
            "base_variant_id": variant_ids[0] if len(variant_ids) == 1 else None,
            "variants": variants,
        }
        for vid in variant_ids:
            self.levels[vid] = {1: 0}

    def set_level(self, variant_id: int, qty: int, location_id: int = 1) -> None:
        with self.lock:
            self.levels[variant_id][location_id] = qty

    def badge(self, kind: str, resource_id: int) -> dict | None:
        with self.lock:
            for row in self.metafields[kind].values():
                if row["resource_id"] == resource_id:
                    return json.loads(row["value"])
        return None

    def put_order(self, order: dict, products: list[dict]) -> None:
        """Place or change an order (V2 shapes); the caller keeps `date_modified` moving."""
        with self.lock:
            self.orders[int(order["id"])] = order
            self.order_products[int(order["id"])] = products

    def total_calls(self) -> int:
        return sum(self.calls.values())

    # -- rate limit ------------------------------------------------------------------------

    def admit(self) -> tuple[bool, dict[str, str]]:
        with self.lock:
            now = time.monotonic()
            if now - self._window_start >= self.window_ms / 1000:
                self._window_start, self._used = now, 0
            reset_ms = max(1, int(self.window_ms - (now - self._window_start) * 1000))
            allowed = self._used < self.quota and self.other_apps_burst <= 0
            self.other_apps_burst -= 1
            if allowed:
                self._used += 1
            else:
                self.rate_limited += 1
            headers = {
                "X-Rate-Limit-Requests-Left": str(max(0, self.quota - self._used)),
                "X-Rate-Limit-Requests-Quota": str(self.quota),
                "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
                "X-Rate-Limit-Time-Window-Ms": str(self.window_ms),
            }
            return allowed, headers

    # -- endpoints -------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict, body) -> tuple[int, object]:
        parts = path.strip("/").split("/")
        with self.lock:
            if method == "GET" and parts[:3] == ["v3", "catalog", "products"] and len(parts) == 4:
                product = self.products.get(int(parts[3]))
                if product is None:
                    return 404, {"status": 404, "title": "The requested product was not found."}
                return 200, {"data": self._product(product), "meta": {}}
            if method == "GET" and parts == ["v3", "catalog", "products"]:
                return 200, self._page([self._product(p) for p in self.products.values()], query)
            if method == "GET" and parts == ["v3", "inventory", "items"]:
                return 200, self._items(query)
            if method == "GET" and parts == ["v3", "inventory", "locations"]:
                return 200, self._page(list(self.locations.values()), query)
            if len(parts) == 4 and parts[1] == "catalog" and parts[3] == "metafields":
                return self._metafields(method, parts[2], query, body)
            if parts == ["v3", "hooks"] or parts[:2] == ["v3", "hooks"]:
                return self._registry(method, parts[2:], query, body, self.hooks, "id")
            if parts[:3] == ["v3", "content", "scripts"]:
                return self._registry(method, parts[3:], query, body, self.scripts, "uuid")
            if method == "GET" and parts == ["v2", "store"]:
                return 200, self.store
            if method == "GET" and parts == ["v2", "orders"]:
                return self._orders(query)
            if method == "GET" and parts[:2] == ["v2", "orders"] and len(parts) == 3:
                order = self.orders.get(int(parts[2]))
                return (200, order) if order else (404, [{"status": 404}])
            if method == "GET" and parts[:2] == ["v2", "orders"] and parts[3:] == ["products"]:
                return self._v2_page(self.order_products.get(int(parts[2]), []), query)
        return 404, {"status": 404, "title": f"no fake for {method} {path}"}

    def _orders(self, query: dict) -> tuple[int, object]:
        """GET /v2/orders with the filters and sorts the app uses."""
        rows = list(self.orders.values())
        if "min_date_modified" in query:
            since = _when(query["min_date_modified"][0])
            rows = [o for o in rows if _when(o["date_modified"]) >= since]
        field_name, _, direction = query.get("sort", ["id"])[0].partition(":")
        if field_name in ("date_modified", "date_created"):
            rows.sort(key=lambda o: (_when(o[field_name]), o["id"]), reverse=direction == "desc")
        else:
            rows.sort(key=lambda o: o["id"], reverse=direction == "desc")
        return self._v2_page(rows, query)

    @staticmethod
    def _v2_page(rows: list, query: dict) -> tuple[int, object]:
        """V2 collections: a bare array, 50 by default, and 204 No Content past the end."""
        limit = int(query.get("limit", [50])[0])
        page = int(query.get("page", [1])[0])
        chunk = rows[(page - 1) * limit : page * limit]
        return (200, chunk) if chunk else (204, None)

    def _registry(self, method, rest, query, body, rows: dict, key: str) -> tuple[int, object]:
        """Hooks and scripts: list (paged), create, update by id."""
        if method == "GET" and not rest:
            return 200, self._page(list(rows.values()), query)
        if method == "POST" and not rest:
            self._next_id += 1
            ident = self._next_id if key == "id" else f"script-{self._next_id}"
            rows[ident] = {**body, key: ident}
            return 200, {"data": rows[ident], "meta": {}}
        if method == "PUT" and len(rest) == 1:
            ident = int(rest[0]) if key == "id" else rest[0]
            if ident not in rows:
                return 404, {"status": 404}
            rows[ident] = {**rows[ident], **body}
            return 200, {"data": rows[ident], "meta": {}}
        return 404, {"status": 404}

    def _product(self, product: dict) -> dict:
        out = dict(product)
        out["variants"] = [
            {**v, "inventory_level": sum(self.levels[v["id"]].values())}
            for v in product["variants"]
        ]
        out["inventory_level"] = sum(v["inventory_level"] for v in out["variants"])
        return out

    def _items(self, query: dict) -> dict:
        def wanted(key: str) -> set[int] | None:
            raw = query.get(f"{key}:in")
            return {int(x) for x in raw[0].split(",") if x} if raw else None

        products, variants = wanted("product_id"), wanted("variant_id")
        rows = []
        for product in self.products.values():
            for v in product["variants"]:
                if products is not None and product["id"] not in products:
                    continue
                if variants is not None and v["id"] not in variants:
                    continue
                rows.append(
                    {
                        "identity": {
                            "sku": v["sku"],
                            "variant_id": v["id"],
                            "product_id": product["id"],
                            "sku_id": v["id"],
                        },
                        "locations": [
                            {
                                "location_id": loc,
                                "location_code": f"LOC-{loc}",
                                "location_name": "Default location",
                                "available_to_sell": qty,
                                "total_inventory_onhand": qty,
                                "location_enabled": True,
                                "settings": {"safety_stock": 0, "is_in_stock": qty > 0},
                            }
                            for loc, qty in sorted(self.levels[v["id"]].items())
                        ],
                    }
                )
        return self._page(rows, query, default_limit=50)

    def _metafields(self, method: str, kind: str, query: dict, body) -> tuple[int, object]:
        table = self.metafields[kind]
        if method == "GET":
            rows = [
                row
                for row in table.values()
                if row["namespace"] == query.get("namespace", [row["namespace"]])[0]
                and row["key"] == query.get("key", [row["key"]])[0]
            ]
            return 200, self._page(rows, query)
        data, errors = [], []
        for item in body:
            if method == "POST":
                clash = any(
                    r["resource_id"] == item["resource_id"]
                    and (r["namespace"], r["key"]) == (item["namespace"], item["key"])
                    for r in table.values()
                )
                if clash:
                    errors.append({"status": 409, "title": "metafield already exists"})
                    continue
                self._next_id += 1
                row = {**item, "id": self._next_id, "resource_type": kind[:-1]}
                table[row["id"]] = row
            else:
                row = table.get(item["id"])
                if row is None:
                    errors.append({"status": 404, "title": f"metafield {item['id']} not found"})
                    continue
                row.update({k: v for k, v in item.items() if k != "id"})
            data.append(dict(row))
        meta = {"total": len(data), "success": len(data), "failed": len(errors)}
        return (422 if errors else 200), {"data": data, "errors": errors, "meta": meta}

    @staticmethod
    def _page(rows: list, query: dict, default_limit: int = 50) -> dict:
        limit = int(query.get("limit", [default_limit])[0])
        page = int(query.get("page", [1])[0])
        total_pages = max(1, -(-len(rows) // limit))
        chunk = rows[(page - 1) * limit : page * limit]
        return {
            "data": chunk,
            "meta": {
                "pagination": {
                    "total": len(rows),
                    "count": len(chunk),
                    "per_page": limit,
                    "current_page": page,
                    "total_pages": total_pages,
                }
            },
        }


class _Handler(BaseHTTPRequestHandler):
    store: FakeStore

    def log_message(self, *args) -> None:  # keep the test and bench output clean
        pass

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        prefix = f"/stores/{self.store.store_hash}"
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not split.path.startswith(prefix + "/"):
            return self._send(404, {"title": "unknown store"}, {})
        if self.headers.get("X-Auth-Token") != self.store.token:
            return self._send(401, {"status": 401, "title": "Unauthorized"}, {})
        allowed, limit_headers = self.store.admit()
        if not allowed:
            return self._send(429, {"status": 429, "title": "Too many requests"}, limit_headers)
        path = split.path[len(prefix) :]
        self.store.calls[f"{method} {path}"] += 1
        status, body = self.store.handle(
            method, path, parse_qs(split.query), json.loads(raw) if raw else None
        )
        self._send(status, body, limit_headers)

    def _send(self, status: int, body, headers: dict[str, str]) -> None:
        payload = b"" if status == 204 else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")


class FakeBigCommerce:
    """The fake on an ephemeral loopback port, served from a daemon thread."""

    def __init__(self, store: FakeStore):
        self.store = store
        handler = type("Handler", (_Handler,), {"store": store})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeBigCommerce:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
