"""Builders for the Shopify webhook and connector tests: signed deliveries, documented payloads,
and GraphQL answers shaped as Shopify documents them (shops come from tests/factories.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

from flask import current_app

from plugin.models import utcnow
from tests.conftest import base_env
from tests.factories import SHOPIFY_SHOP, SHOPIFY_TOKEN
from webhooks.shopify import sign

FIXTURES = Path(__file__).parent / "fixtures/shopify"
ROOT = Path(__file__).resolve().parent.parent
RQ = Path(sys.executable).parent / "rq"
# The shop tests/factories.py installs by default, and its token.
SHOP, TOKEN = SHOPIFY_SHOP, SHOPIFY_TOKEN
ENDPOINT = f"https://{SHOP}/admin/api/2025-01/graphql.json"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def shopify_headers(
    body: bytes,
    topic: str,
    *,
    shop: str = SHOP,
    event_id: str | None = None,
    triggered_at: datetime | str | None = None,
    secret: str | None = None,
) -> dict[str, str]:
    secret = secret or current_app.extensions["settings"].shopify_client_secret
    # Shopify always sends the time the event was triggered; default to now like it would.
    triggered_at = triggered_at or utcnow()
    when = triggered_at.isoformat() if isinstance(triggered_at, datetime) else triggered_at
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(secret, body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
    }
    headers["X-Shopify-Triggered-At"] = when
    return headers


def post_webhook(client, topic: str, body: bytes | dict, **kwargs):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/webhooks/shopify", data=raw, headers=shopify_headers(raw, topic, **kwargs))


def cost(requested: float = 10, available: float = 990, maximum: float = 1000, rate: float = 100):
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": requested,
            "throttleStatus": {
                "maximumAvailable": maximum,
                "currentlyAvailable": available,
                "restoreRate": rate,
            },
        }
    }


def gql_answer(data: dict, **cost_kwargs) -> dict:
    return {"data": data, "extensions": cost(**cost_kwargs)}


def throttled_answer(requested: float = 10, available: float = 4, rate: float = 100) -> dict:
    """Shopify's answer when the bucket cannot cover the query (HTTP 200, no data)."""
    return {
        "errors": [
            {
                "message": "Throttled",
                "extensions": {
                    "code": "THROTTLED",
                    "documentation": "https://shopify.dev/api/usage/rate-limits",
                },
            }
        ],
        "extensions": {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": None,
                "throttleStatus": {
                    "maximumAvailable": 1000.0,
                    "currentlyAvailable": available,
                    "restoreRate": rate,
                },
            }
        },
    }


def level_node(location_id: str, available: int) -> dict:
    return {
        "location": {"id": f"gid://shopify/Location/{location_id}"},
        "quantities": [{"name": "available", "quantity": available}],
    }


def variant_node(
    variant_id: str,
    item_id: str,
    levels: dict[str, int],
    *,
    policy: str = "DENY",
    title: str = "Small",
    sku: str = "",
    more_levels: str | None = None,
) -> dict:
    return {
        "id": f"gid://shopify/ProductVariant/{variant_id}",
        "sku": sku,
        "title": title,
        "inventoryPolicy": policy,
        "inventoryItem": {
            "id": f"gid://shopify/InventoryItem/{item_id}",
            "tracked": True,
            "inventoryLevels": {
                "pageInfo": {"hasNextPage": more_levels is not None, "endCursor": more_levels},
                "nodes": [level_node(loc, qty) for loc, qty in levels.items()],
            },
        },
    }


def product_node(
    product_id: str,
    variants: list[dict],
    *,
    title: str = "Example T-Shirt",
    more_variants: str | None = None,
) -> dict:
    return {
        "id": f"gid://shopify/Product/{product_id}",
        "title": title,
        "variants": {
            "pageInfo": {"hasNextPage": more_variants is not None, "endCursor": more_variants},
            "nodes": variants,
        },
    }


def sent(call) -> dict:
    """The JSON body of one request `responses` recorded."""
    return json.loads(call.request.body)


def operation_of(call) -> str:
    query = sent(call)["query"]
    for word in ("query ", "mutation "):
        if word in query:
            return query.split(word, 1)[1].split("(", 1)[0].split("{", 1)[0].strip()
    return ""


def run_worker(database_url: str, redis_url: str, api_base: str) -> None:
    """One real `rq worker --burst` process, its Shopify calls sent to a local fake at
    `api_base` (fakes/shopify_graphql.py) through SHOPIFY_API_BASE_OVERRIDE."""
    env = {
        **os.environ,
        **base_env(DATABASE_URL=database_url, REDIS_URL=redis_url),
        "SHOPIFY_API_BASE_OVERRIDE": api_base,
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [str(RQ), "worker", "--burst", "--with-scheduler", "--url", redis_url, "webhooks", "push"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
