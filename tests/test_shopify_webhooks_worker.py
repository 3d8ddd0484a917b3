"""Shopify's documented payloads through the real endpoint, the real Redis queue and a real
`rq worker --burst` process, against a local fake of the GraphQL Admin API.

`responses` cannot reach into another process, so the worker is pointed at a fake Shopify on
127.0.0.1 (fakes/shopify_graphql.py) through SHOPIFY_API_BASE_OVERRIDE; the fake validates
every document against Shopify's schema and enforces the bucket.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from fakes.shopify_graphql import FakeShopify, FakeVariant
from plugin.extensions import db
from plugin.models import BadgeKind, InboxStatus, Variant, VariantBadge, WebhookEvent, utcnow
from tests.factories import shopify_shop
from tests.shopify_webhook_helpers import TOKEN, fixture_bytes, post_webhook, run_worker
from tests.waiting import wait_until

PRODUCT_ID = "788032119674292922"
SMALL, MEDIUM = "642667041472713922", "757650484644203962"
SMALL_ITEM, LOCATION = "271878346596884015", "24826418"
NS = "$app:backorder"

pytestmark = pytest.mark.services


@pytest.fixture
def fake_shopify():
    fake = FakeShopify(token=TOKEN)
    fake.add_variant(
        FakeVariant(SMALL, SMALL_ITEM, PRODUCT_ID, "Small", levels={LOCATION: 0}), "Example T-Shirt"
    )
    fake.add_variant(FakeVariant(MEDIUM, "49148385", PRODUCT_ID, "Medium", levels={LOCATION: 5}))
    base = fake.start()
    yield fake, base
    fake.stop()


def test_documented_webhooks_through_redis_and_a_worker_write_the_latest_badge_once(
    queued_app, database_url, redis_url, fake_shopify
):
    fake, api_base = fake_shopify
    shopify_shop()
    client = queued_app.test_client()
    now = utcnow()

    # The documented products/update sample lacks inventory_item_id: the worker reads the
    # product by GraphQL. Then Shopify's inventory_levels/update sample restocks Small, twice
    # delivered, and a late older event (sold out again) arrives after it.
    assert (
        post_webhook(
            client, "products/update", fixture_bytes("products-update.json"), triggered_at=now
        ).status_code
        == 200
    )
    restock = fixture_bytes("inventory_levels-update.json")
    for _ in range(2):
        response = post_webhook(
            client,
            "inventory_levels/update",
            restock,
            event_id="evt-restock",
            triggered_at=now + timedelta(seconds=2),
        )
        assert response.status_code == 200
    # Ordered by the signed payload's updated_at (a minute older here), not by the header.
    stale = restock.replace(b'"available": 10', b'"available": 0').replace(
        b'"updated_at": "2021-12-31T19:00:00-05:00"', b'"updated_at": "2021-12-31T18:59:00-05:00"'
    )
    assert stale != restock.replace(b'"available": 10', b'"available": 0')
    post_webhook(client, "inventory_levels/update", stale, triggered_at=now + timedelta(seconds=1))
    assert fake.requests == []  # acknowledged, stored, queued: nothing processed in the request

    # The push is coalesced with a 1 s delay: burst workers until it has run (bounded).
    wait_until(
        lambda: fake.calls("BadgeMetafieldsWrite"),
        before_each=lambda: run_worker(database_url, redis_url, api_base),
        timeout=60,
        interval=0.6,
        what="a burst worker to push the badges",
    )

    assert [r["operation"] for r in fake.requests] == ["BadgeProduct", "BadgeMetafieldsWrite"]
    assert fake.requests[0]["variables"] == {"id": f"gid://shopify/Product/{PRODUCT_ID}"}
    write = fake.requests[1]["variables"]
    assert len(write["metafields"]) <= 25
    small, medium = (
        f"gid://shopify/ProductVariant/{SMALL}",
        f"gid://shopify/ProductVariant/{MEDIUM}",
    )
    # One write of each variant's latest badge: Small was sold out, then restocked, before
    # any push ran, so Shopify only ever hears "in stock".
    assert sorted((m["ownerId"], m["key"], m["value"]) for m in write["metafields"]) == [
        (small, "label", "In stock"),
        (small, "state", "in_stock"),
        (medium, "label", "In stock"),
        (medium, "state", "in_stock"),
    ]
    assert fake.badge(SMALL) == {"state": "in_stock", "label": "In stock"}

    db.session.expire_all()
    events = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
    assert [e.status for e in events] == [InboxStatus.PROCESSED] * 3
    assert events[1].deliveries == 2 and events[1].attempts == 1
    variant = db.session.scalars(select(Variant).where(Variant.platform_id == SMALL)).one()
    assert [(lv.location_id, lv.available) for lv in variant.levels] == [(LOCATION, 10)]
    badge = db.session.get(VariantBadge, variant.id)
    assert badge.state == BadgeKind.IN_STOCK and badge.pushed_version == badge.version
