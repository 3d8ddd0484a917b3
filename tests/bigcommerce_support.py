"""Builders for BigCommerce tests: deliveries signed as BigCommerce signs them (Standard Webhooks,
with the `standardwebhooks` library), the documented payloads, a connector on a fresh cache, and
V3 answers shaped as BigCommerce documents them. Stores themselves come from `tests.factories`."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from standardwebhooks import Webhook

from connectors.base import KeyValueCache, MemoryCache, TokenCallbacks
from connectors.bigcommerce.client import BigCommerceClient
from connectors.bigcommerce.connector import BigCommerceConnector
from tests.factories import BIGCOMMERCE_HOOK_SECRET as HOOK_SECRET
from tests.factories import BIGCOMMERCE_STORE as STORE
from tests.factories import BIGCOMMERCE_TOKEN as TOKEN

FIXTURES = Path(__file__).parent / "fixtures" / "bigcommerce"
CLIENT_SECRET = "bc-client-secret"  # tests/conftest.py base_env
APP_URL = "https://app.test"  # tests/conftest.py base_env
API = f"https://api.bigcommerce.com/stores/{STORE}"
RATE_HEADERS = {
    "X-Rate-Limit-Requests-Left": "140",
    "X-Rate-Limit-Requests-Quota": "150",
    "X-Rate-Limit-Time-Reset-Ms": "20000",
    "X-Rate-Limit-Time-Window-Ms": "30000",
}


def documented_payload(name: str, store: str = STORE) -> dict:
    """A payload from BigCommerce's docs, sent by `store` (the docs write `stores/{store_hash}`)."""
    payload = json.loads((FIXTURES / f"{name}.json").read_text())
    payload["producer"] = f"stores/{store}"
    return payload


def signed(
    payload: dict,
    *,
    msg_id: str | None = None,
    secret_header: str | None = HOOK_SECRET,
    client_secret: str = CLIENT_SECRET,
    when: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The exact bytes and headers BigCommerce POSTs for one event."""
    body = json.dumps(payload).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = when or datetime.now(UTC)
    signer = Webhook(base64.b64encode(client_secret.encode()).decode())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signer.sign(msg_id, when, body.decode()),
    }
    if secret_header is not None:
        headers["X-Backorder-Secret"] = secret_header
    return body, headers


def store_connector(
    client: BigCommerceClient | None = None, cache: KeyValueCache | None = None
) -> BigCommerceConnector:
    """The store's connector for one unit of work, on its own cache unless one is given; its
    client never really sleeps (pass one with a `sleep` to see the waits)."""
    return BigCommerceConnector(
        STORE,
        TokenCallbacks(access_token=lambda: TOKEN),
        cache if cache is not None else MemoryCache(),
        app_url=APP_URL,
        webhook_secret=HOOK_SECRET,
        client=client or BigCommerceClient(STORE, TOKEN, sleep=lambda _seconds: None),
    )


def v3_product(
    product_id: int,
    variants: list[tuple[int, str, int]],
    *,
    tracking: str = "variant",
    level: int = 0,
    availability: str = "available",
    base_variant_id: int | None = None,
) -> dict:
    """GET /v3/catalog/products/{id}?include=variants, as documented (fields the app reads)."""
    return {
        "id": product_id,
        "name": f"Product {product_id}",
        "type": "physical",
        "sku": f"P-{product_id}",
        "inventory_tracking": tracking,
        "inventory_level": level,
        "inventory_warning_level": 0,
        "availability": availability,
        "availability_description": "",
        "base_variant_id": base_variant_id,
        "variants": [
            {
                "id": vid,
                "product_id": product_id,
                "sku": f"SKU-{vid}",
                "sku_id": vid,
                "inventory_level": qty,
                "inventory_warning_level": 0,
                "purchasing_disabled": False,
                "purchasing_disabled_message": "",
                "option_values": [
                    {"id": 1, "label": label, "option_id": 10, "option_display_name": "Size"}
                ]
                if label
                else [],
            }
            for vid, label, qty in variants
        ],
    }


def inventory_item(
    product_id: int, variant_id: int, levels: dict[int, int], **location_extra
) -> dict:
    """One item of GET /v3/inventory/items, as documented."""
    return {
        "identity": {
            "sku": f"SKU-{variant_id}",
            "variant_id": variant_id,
            "product_id": product_id,
            "sku_id": variant_id,
        },
        "locations": [
            {
                "location_id": loc,
                "location_code": f"LOC-{loc}",
                "location_name": f"Location {loc}",
                "available_to_sell": qty,
                "total_inventory_onhand": qty,
                "location_enabled": True,
                "settings": {"safety_stock": 0, "is_in_stock": qty > 0, "warning_level": 0},
                **location_extra,
            }
            for loc, qty in levels.items()
        ],
    }


def page(data: list, *, current: int = 1, total_pages: int = 1, total: int | None = None) -> dict:
    return {
        "data": data,
        "meta": {
            "pagination": {
                "total": len(data) if total is None else total,
                "count": len(data),
                "per_page": 250,
                "current_page": current,
                "total_pages": total_pages,
            }
        },
    }
