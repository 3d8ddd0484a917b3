"""Hostile input at the door: every cause of HTTP 500 issue 13 found (defect 4) is a 400 with a
message, checked before the database, on each platform, and nothing is stored.

- an event id or shop domain over 255 characters, a topic over 128;
- a time of 9999-12-31T23:59:59-14:00 (beyond what UTC can hold);
- a signed body nested 5,000 deep;
- a field of the wrong type (`"scope": [..]`);
- a NUL byte in a public route's query string, or in a header.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest
from flask import current_app
from sqlalchemy import func, select
from standardwebhooks import Webhook

from plugin.extensions import db
from plugin.models import WebhookEvent
from tests import factories
from tests.bigcommerce_support import CLIENT_SECRET, HOOK_SECRET, STORE, documented_payload
from tests.shopify_webhook_helpers import SHOP, fixture_bytes, shopify_headers
from webhooks import sandbox as sandbox_webhooks

FAR = "9999-12-31T23:59:59-14:00"
PLATFORMS = ["shopify", "sandbox", "bigcommerce"]


def stored() -> int:
    return db.session.scalar(select(func.count()).select_from(WebhookEvent))


def shopify_body() -> dict:
    return json.loads(fixture_bytes("inventory_levels-update.json"))


def sandbox_body() -> dict:
    return {"variant_id": "1", "available": 3}


def bigcommerce_body() -> dict:
    return documented_payload("store-product-updated")


def post(client, platform: str, body: dict | bytes, **fields):
    """Sign `body` as the platform does, with header fields overridden: topic, shop, event_id,
    triggered_at (BigCommerce carries topic and shop in its signed payload instead)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if platform == "shopify":
        headers = shopify_headers(
            raw,
            fields.get("topic", "inventory_levels/update"),
            shop=fields.get("shop", SHOP),
            event_id=fields.get("event_id"),
            triggered_at=fields.get("triggered_at"),
        )
    elif platform == "sandbox":
        headers = {
            "Content-Type": "application/json",
            sandbox_webhooks.H_TOPIC: fields.get("topic", "inventory_levels/update"),
            sandbox_webhooks.H_SHOP: fields.get("shop", factories.SANDBOX_SHOP),
            sandbox_webhooks.H_EVENT: fields.get("event_id", str(uuid.uuid4())),
            sandbox_webhooks.H_TRIGGERED: fields.get("triggered_at", datetime.now(UTC).isoformat()),
            sandbox_webhooks.H_HMAC: sandbox_webhooks.sign(
                current_app.extensions["settings"].secret_key, raw
            ),
        }
    else:
        msg_id = fields.get("event_id", f"msg_{uuid.uuid4().hex}")
        when = datetime.now(UTC)
        signer = Webhook(base64.b64encode(CLIENT_SECRET.encode()).decode())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signer.sign(msg_id, when, raw.decode()),
            "X-Backorder-Secret": HOOK_SECRET,
        }
    return client.post(f"/webhooks/{platform}", data=raw, headers=headers)


def body_for(platform: str, **changes) -> dict:
    body = {"shopify": shopify_body, "sandbox": sandbox_body, "bigcommerce": bigcommerce_body}[
        platform
    ]()
    body.update(changes)
    return body


@pytest.fixture
def shops(app):
    factories.shopify_shop()
    factories.shop()
    factories.bigcommerce_store()


def refused(response, words: str) -> None:
    assert response.status_code == 400, (response.status_code, response.get_data(as_text=True))
    assert words in response.json["error"], response.json
    assert stored() == 0


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_event_id_over_255_characters_is_refused(client, shops, platform):
    response = post(client, platform, body_for(platform), event_id="e" * 256)
    refused(response, "longer than 255")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_shop_over_255_characters_is_refused(client, shops, platform):
    if platform == "bigcommerce":
        response = post(client, platform, body_for(platform, producer="stores/" + "s" * 256))
    else:
        response = post(client, platform, body_for(platform), shop="s" * 250 + ".myshopify.com")
    refused(response, "longer than 255")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_topic_over_128_characters_is_refused(client, shops, platform):
    topic = "store/product/" + "t" * 120
    if platform == "bigcommerce":
        response = post(client, platform, body_for(platform, scope=topic))
    else:
        response = post(client, platform, body_for(platform), topic=topic)
    refused(response, "longer than 128")


@pytest.mark.parametrize("platform", ["shopify", "sandbox"])
def test_a_nul_in_a_header_is_refused(client, shops, platform):
    response = post(client, platform, body_for(platform), event_id="evt\x00-1")
    refused(response, "control characters")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_time_beyond_utc_is_taken_as_absent(client, shops, platform):
    # A topic the app stores but has nothing to do for: no store is called.
    if platform == "bigcommerce":
        body = body_for(platform, created_at=10**15, scope="store/customer/created")
        response = post(client, platform, body)
    else:
        body = body_for(platform, updated_at=FAR)
        response = post(client, platform, body, topic="products/create", triggered_at=FAR)
    assert response.status_code == 200, response.get_data(as_text=True)
    event = db.session.scalars(select(WebhookEvent)).one()
    assert event.triggered_at is None or event.triggered_at.year < 9999


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_signed_body_nested_5000_deep_is_refused(client, shops, platform):
    response = post(client, platform, b"[" * 5000 + b"]" * 5000)
    refused(response, "not JSON")
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    refused(post(client, platform, deep), "not JSON")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_field_of_the_wrong_type_is_refused(client, shops, platform):
    wrong = {
        "shopify": {"inventory_item_id": [271878346596884015]},
        "sandbox": {"available": {"units": 3}},
        "bigcommerce": {"scope": ["store/product/updated"]},
    }[platform]
    response = post(client, platform, body_for(platform, **wrong))
    refused(response, "")
    assert "payload" in response.json["error"] or "must be text" in response.json["error"]


def test_a_nul_in_a_public_query_string_is_refused_before_the_database(client, shops):
    for url in (
        "/storefront/v1/badges?shop=%00&variants=1",
        f"/storefront/v1/badges?shop={STORE}&variants=1%00",
        "/storefront/v1/notify/form?shop=%00",
    ):
        response = client.get(url)
        assert response.status_code == 400, url
        assert response.json["error"] == "The request contains a NUL character."
