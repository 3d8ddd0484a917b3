"""Builders for BigCommerce tests: deliveries signed as BigCommerce signs them (Standard Webhooks,
with the `standardwebhooks` library), the documented payloads, a connector on a fresh cache, and
V3 answers shaped as BigCommerce documents them. Stores themselves come from `tests.factories`."""

from __future__ import annotations

import base64
import copy
import email.utils
import hashlib
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from standardwebhooks import Webhook

from connectors.base import KeyValueCache, MemoryCache, TokenCallbacks
from connectors.bigcommerce.client import BigCommerceClient
from connectors.bigcommerce.connector import BigCommerceConnector
from tests.factories import BIGCOMMERCE_HOOK_SECRET as HOOK_SECRET
from tests.factories import BIGCOMMERCE_STORE as STORE
from tests.factories import BIGCOMMERCE_TOKEN as TOKEN

ROOT = Path(__file__).resolve().parent.parent
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


def webhook_payload(name: str, *, store: str = STORE, **data) -> dict:
    """A documented payload with `data` changed as named, sent now. A changed
    `data` gets its own hash, as BigCommerce computes it: SHA-1 of the JSON-encoded data."""
    payload = documented_payload(name, store)
    if data:
        payload["data"].update(data)
        encoded = json.dumps(payload["data"], separators=(",", ":"), sort_keys=True)
        payload["hash"] = hashlib.sha1(encoded.encode()).hexdigest()
    payload["created_at"] = int(datetime.now(UTC).timestamp())
    return payload


def status_change(previous: int, new: int, order_id: int = 250) -> dict:
    """`store/order/statusUpdated` for one status change of one order."""
    status = {"previous_status_id": previous, "new_status_id": new}
    return webhook_payload("store-order-statusUpdated", id=order_id, status=status)


# V2 status ids and their system labels (GET /v2/order_statuses).
ORDER_STATUSES = {
    0: "Incomplete",
    1: "Pending",
    2: "Shipped",
    3: "Partially Shipped",
    4: "Refunded",
    5: "Cancelled",
    6: "Declined",
    7: "Awaiting Payment",
    8: "Awaiting Pickup",
    9: "Awaiting Shipment",
    10: "Completed",
    11: "Awaiting Fulfillment",
    12: "Manual Verification Required",
    13: "Disputed",
    14: "Partially Refunded",
}


@cache
def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def rfc2822(when: datetime) -> str:
    """How V2 writes dates: `Thu, 20 Jun 2019 16:07:08 +0000`."""
    return email.utils.format_datetime(when.astimezone(UTC).replace(microsecond=0))


def v2_order_product(
    line_id: int,
    order_id: int,
    product_id: int,
    variant_id: int,
    quantity: int,
    *,
    shipped: int = 0,
    refunded: int = 0,
) -> dict:
    """One item of GET /v2/orders/{id}/products: the documented example, for this line."""
    row = copy.deepcopy(_fixture("v2-order-product"))
    row.update(
        id=line_id,
        order_id=order_id,
        product_id=product_id,
        variant_id=variant_id,
        quantity=quantity,
        quantity_shipped=shipped,
        quantity_refunded=refunded,
        is_refunded=refunded > 0,
    )
    for option in row["product_options"]:
        option["order_product_id"] = line_id
    return row


def v2_order(
    order_id: int,
    status_id: int,
    *,
    created: datetime,
    modified: datetime,
    products: list[dict] = (),
    email: str = "janedoe@email.com",
    customer_locale: str = "en",
) -> dict:
    """GET /v2/orders/{id} (and each item of GET /v2/orders): the documented example ("Multiple
    Items"), for this order, status and dates; `products` set its item counts."""
    order = copy.deepcopy(_fixture("v2-order"))
    name = ORDER_STATUSES[status_id]
    order.update(
        id=order_id,
        status_id=status_id,
        status=name,
        custom_status=name,
        date_created=rfc2822(created),
        date_modified=rfc2822(modified),
        date_shipped=rfc2822(modified) if status_id == 2 else "",
        items_total=sum(p["quantity"] for p in products),
        items_shipped=sum(p["quantity_shipped"] for p in products),
        customer_locale=customer_locale,
    )
    order["billing_address"]["email"] = email
    for resource in ("products", "shipping_addresses", "coupons"):
        path = f"/orders/{order_id}/{resource.replace('_', '')}"
        order[resource] = {"url": f"{API}/v2{path}", "resource": path}
    return order


def store_information(**changes) -> dict:
    """GET /v2/store: the documented example with `changes` (`timezone` takes a zone name)."""
    store = copy.deepcopy(_fixture("v2-store"))
    if "timezone" in changes:
        store["timezone"]["name"] = changes.pop("timezone")
    store.update(changes)
    return store


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


# -- a real worker ----------------------------------------------------------------------------


def run_worker(database_url: str, redis_url: str, api_base: str) -> str:
    """One `rq worker --burst` subprocess over the app's queues, against `api_base`."""
    from tests.conftest import base_env

    env = {
        **os.environ,
        **base_env(DATABASE_URL=database_url, REDIS_URL=redis_url),
        "PYTHONPATH": str(ROOT),
        "BIGCOMMERCE_API_BASE_OVERRIDE": api_base,
    }
    rq = str(Path(sys.executable).with_name("rq"))
    done = subprocess.run(
        [rq, "worker", "--burst", "--with-scheduler", "-u", redis_url, "webhooks", "push"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr + done.stdout


SCHEDULED_QUEUES = ("webhooks", "push")


def scheduled_jobs(redis_url: str) -> tuple[int, int]:
    """(jobs scheduled for later, of which due now) on the queues the worker runs."""
    from redis import Redis
    from rq.registry import ScheduledJobRegistry

    total = due = 0
    with Redis.from_url(redis_url) as redis:
        for name in SCHEDULED_QUEUES:
            registry = ScheduledJobRegistry(name, connection=redis)
            total += registry.get_job_count(cleanup=False)
            due += len(registry.get_jobs_to_schedule())
    return total, due


def scheduled_jobs_due(redis_url: str) -> bool:
    """Every job scheduled for later (the push) is due, so a worker started now runs it."""
    total, due = scheduled_jobs(redis_url)
    return due == total


def drain(database_url: str, redis_url: str, api_base: str) -> None:
    """Process every queued webhook, then the push they scheduled, and whatever was handed to
    the queue for later (a drain waiting out the store's rate limit), once due."""
    from tests.waiting import wait_until

    run_worker(database_url, redis_url, api_base)
    # The push is scheduled 1 s out so a burst of events coalesces: the next worker runs it
    # once it is due.
    for _round in range(10):
        if scheduled_jobs(redis_url)[0] == 0:
            return
        wait_until(lambda: scheduled_jobs_due(redis_url), timeout=10, what="the work scheduled")
        run_worker(database_url, redis_url, api_base)
