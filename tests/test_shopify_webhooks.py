"""Shopify's documented webhook payloads replayed through the real endpoint.

Jobs run inline here (the `app` fixture), so one POST goes endpoint → inbox → worker pipeline →
push → GraphQL; `responses` plays Shopify and every request the app sends is asserted.
The same path through Redis and a real `rq worker` is in test_shopify_webhooks_worker.py.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
import responses
from sqlalchemy import func, select

from connectors.shopify import graphql as shopify_graphql
from plugin.extensions import db
from plugin.models import (
    BackorderLine,
    BackorderStatus,
    BadgeKind,
    DataRequestReport,
    InboxStatus,
    InstallStatus,
    Order,
    Shop,
    Variant,
    VariantBadge,
    WebhookEvent,
    utcnow,
)
from plugin.services import catalog
from tests import factories
from tests.shopify_webhook_helpers import (
    ENDPOINT,
    SHOP,
    fixture_bytes,
    gql_answer,
    operation_of,
    post_webhook,
    product_node,
    sent,
    variant_node,
)
from webhooks.shopify import ShopifyWebhooks, sign
from webhooks.source import StoreContext, StoredDelivery, body_digest

PRODUCT_ID = "788032119674292922"
SMALL, MEDIUM = "642667041472713922", "757650484644203962"
# inventory_levels-update.json names this item and location.
SMALL_ITEM, LOCATION = "271878346596884015", "24826418"
MEDIUM_ITEM = "49148385"
NS = "$app:backorder"


@pytest.fixture(autouse=True)
def fresh_buckets():
    shopify_graphql._BUCKETS.clear()
    yield
    shopify_graphql._BUCKETS.clear()


def product_answer(small_available: int = 0, medium_available: int = 5) -> dict:
    return gql_answer(
        {
            "product": product_node(
                PRODUCT_ID,
                [
                    variant_node(SMALL, SMALL_ITEM, {LOCATION: small_available}, title="Small"),
                    variant_node(MEDIUM, MEDIUM_ITEM, {LOCATION: medium_available}, title="Medium"),
                ],
            )
        }
    )


def metafields_answer() -> dict:
    return gql_answer({"metafieldsSet": {"metafields": [], "userErrors": []}})


def write_answer() -> dict:
    return gql_answer(
        {
            "metafieldsSet": {"metafields": [], "userErrors": []},
            "metafieldsDelete": {"deletedMetafields": [], "userErrors": []},
        }
    )


def seed_from_products_update(client, rsps) -> None:
    """The documented products/update sample (variants without inventory_item_id) makes the
    worker read the product through GraphQL, then push both badges."""
    rsps.post(ENDPOINT, json=product_answer())
    rsps.post(ENDPOINT, json=write_answer())
    response = post_webhook(
        client, "products/update", fixture_bytes("products-update.json"), event_id="seed"
    )
    assert response.status_code == 200


def badge(variant_id: str) -> VariantBadge:
    variant = db.session.scalars(select(Variant).where(Variant.platform_id == variant_id)).one()
    return db.session.get(VariantBadge, variant.id)


def test_signature_vector_w1_from_shopify_app_js():
    # Shopify/shopify-app-js validate.test.ts "returns true for valid request".
    assert sign("test_secret_key", b'{"foo": "bar"}') == (
        "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
    )


def test_w1_delivery_is_accepted_and_stored_under_its_body_digest(app, client):
    app.extensions["settings"] = dataclasses.replace(
        app.extensions["settings"], shopify_client_secret="test_secret_key"
    )
    app.extensions.pop("webhook_sources", None)  # sources are built with the app's secrets
    headers = {
        "X-Shopify-Hmac-Sha256": "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=",
        "X-Shopify-Topic": "products/create",
        "X-Shopify-Shop-Domain": "shop1.myshopify.io",
        "X-Shopify-API-Version": "2023-01",
        "X-Shopify-Webhook-Id": "123456789",
    }
    response = client.post("/webhooks/shopify", data=b'{"foo": "bar"}', headers=headers)
    assert response.status_code == 200
    stored = db.session.scalars(select(WebhookEvent)).one()
    assert (stored.event_id, stored.topic, stored.body) == (
        body_digest(b'{"foo": "bar"}'),  # the signed body names the event; headers are unsigned
        "products/create",
        b'{"foo": "bar"}',
    )
    assert stored.headers["X-Shopify-Webhook-Id"] == "123456789"  # kept, shown on support pages
    assert stored.status == InboxStatus.IGNORED  # no such shop installed


def _tampered(body: bytes, headers: dict) -> tuple[bytes, dict]:
    return body.replace(b'"available": 10', b'"available": 99'), headers


def _forged(body: bytes, headers: dict) -> tuple[bytes, dict]:
    return body, {**headers, "X-Shopify-Hmac-Sha256": sign("someone-elses-secret", body)}


def _unsigned(body: bytes, headers: dict) -> tuple[bytes, dict]:
    return body, {k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"}


@pytest.mark.parametrize("spoil", [_tampered, _forged, _unsigned], ids=lambda f: f.__name__[1:])
@pytest.mark.parametrize(
    "topic", ["inventory_levels/update", "customers/redact", "shop/redact", "app/uninstalled"]
)
def test_a_delivery_without_a_valid_signature_is_refused_with_401_and_not_stored(
    app, client, topic, spoil
):
    factories.shopify_shop()
    body = fixture_bytes("inventory_levels-update.json")
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign("shopify-client-secret", body),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Event-Id": "evt-1",
    }
    body, headers = spoil(body, headers)
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 401
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


@responses.activate
def test_products_update_sample_reads_the_product_by_graphql_and_writes_badges(app, client):
    factories.shopify_shop()
    seed_from_products_update(client, responses)

    read, write = responses.calls
    assert operation_of(read) == "BadgeProduct"
    assert sent(read)["variables"] == {"id": f"gid://shopify/Product/{PRODUCT_ID}"}
    assert read.request.headers["X-Shopify-Access-Token"] == "shpat_test_offline_token"
    assert operation_of(write) == "BadgeMetafieldsWrite"
    small, medium = (
        f"gid://shopify/ProductVariant/{SMALL}",
        f"gid://shopify/ProductVariant/{MEDIUM}",
    )
    line = "single_line_text_field"
    assert sorted(
        sent(write)["variables"]["metafields"], key=lambda m: (m["ownerId"], m["key"])
    ) == [
        {"ownerId": small, "namespace": NS, "key": "label", "type": line, "value": "Out of stock"},
        {"ownerId": small, "namespace": NS, "key": "state", "type": line, "value": "out_of_stock"},
        {"ownerId": medium, "namespace": NS, "key": "label", "type": line, "value": "In stock"},
        {"ownerId": medium, "namespace": NS, "key": "state", "type": line, "value": "in_stock"},
    ]
    # No ETA on either badge: any old ETA is deleted in the same request.
    assert sorted(d["ownerId"] for d in sent(write)["variables"]["deletions"]) == [small, medium]
    variant = db.session.scalars(select(Variant).where(Variant.platform_id == SMALL)).one()
    assert variant.inventory_item_id == SMALL_ITEM
    assert [(lv.location_id, lv.available) for lv in variant.levels] == [(LOCATION, 0)]


@responses.activate
def test_inventory_levels_update_sample_turns_the_badge_and_pushes_it(app, client):
    factories.shopify_shop()
    seed_from_products_update(client, responses)
    responses.post(ENDPOINT, json=write_answer())

    response = post_webhook(
        client,
        "inventory_levels/update",
        fixture_bytes("inventory_levels-update.json"),
    )
    assert response.status_code == 200

    assert badge(SMALL).state == BadgeKind.IN_STOCK
    push = responses.calls[-1]
    assert operation_of(push) == "BadgeMetafieldsWrite"
    # Only the variant whose badge changed is written.
    assert {m["ownerId"] for m in sent(push)["variables"]["metafields"]} == {
        f"gid://shopify/ProductVariant/{SMALL}"
    }
    variant = db.session.scalars(select(Variant).where(Variant.platform_id == SMALL)).one()
    assert [(lv.location_id, lv.available) for lv in variant.levels] == [(LOCATION, 10)]


@responses.activate
def test_a_duplicate_event_id_is_not_processed_twice(app, client):
    factories.shopify_shop()
    seed_from_products_update(client, responses)
    responses.post(ENDPOINT, json=write_answer())
    body = fixture_bytes("inventory_levels-update.json")

    first = post_webhook(client, "inventory_levels/update", body, event_id="evt-42")
    calls_after_first = len(responses.calls)
    again = post_webhook(client, "inventory_levels/update", body, event_id="evt-42")

    assert first.json["duplicate"] is False and again.json["duplicate"] is True
    assert len(responses.calls) == calls_after_first
    # Keyed by the signed body, not the unsigned header.
    stored = db.session.scalars(
        select(WebhookEvent).where(WebhookEvent.event_id == body_digest(body))
    ).one()
    assert stored.headers["X-Shopify-Event-Id"] == "evt-42"  # kept for support
    assert (stored.deliveries, stored.attempts) == (2, 1)


@responses.activate
def test_an_older_updated_at_does_not_override_a_newer_level(app, client):
    """Ordered by the signed payload's `updated_at`: the unsigned X-Shopify-Triggered-At header
    (here claiming the opposite order) is not trusted where the payload has a date."""
    factories.shopify_shop()
    seed_from_products_update(client, responses)
    responses.post(ENDPOINT, json=write_answer())
    payload = json.loads(fixture_bytes("inventory_levels-update.json"))

    now = utcnow()
    newer = {**payload, "available": 0, "updated_at": (now + timedelta(seconds=5)).isoformat()}
    older = {**payload, "available": 10, "updated_at": now.isoformat()}
    post_webhook(client, "inventory_levels/update", newer, triggered_at=now)
    calls = len(responses.calls)
    late = post_webhook(
        client, "inventory_levels/update", older, triggered_at=now + timedelta(seconds=9)
    )

    assert late.status_code == 200
    variant = db.session.scalars(select(Variant).where(Variant.platform_id == SMALL)).one()
    assert [(lv.location_id, lv.available) for lv in variant.levels] == [(LOCATION, 0)]
    assert badge(SMALL).state == BadgeKind.OUT_OF_STOCK
    assert len(responses.calls) == calls  # nothing to push: the late event changed nothing


def delivery(topic: str, body: bytes) -> StoredDelivery:
    when = datetime(2026, 11, 20, tzinfo=UTC)
    return StoredDelivery(topic, body, received_at=when, triggered_at=when)


def test_orders_create_sample_keeps_big_ids_exact_and_skips_lines_without_variant():
    source = ShopifyWebhooks("shopify-client-secret")
    orders = delivery("orders/create", fixture_bytes("orders-create.json"))
    (created,) = source.to_events(orders, StoreContext())
    assert created.order_id == "820982911946154508"  # > 2**53, exact
    order = created.order
    assert order.name == "#9999" and order.customer.email == "jon@example.com"
    assert order.lines == ()  # every line in Shopify's sample has variant_id null


@responses.activate
def test_an_order_for_a_backordered_variant_records_a_backorder_line(app, client):
    shop = factories.shopify_shop()
    shop.settings.auto_backorder = True
    db.session.commit()
    policy = {"productVariantsBulkUpdate": {"productVariants": [], "userErrors": []}}
    for answer in (product_answer(), gql_answer(policy), write_answer()):
        responses.post(ENDPOINT, json=answer)
    post_webhook(client, "products/update", fixture_bytes("products-update.json"))
    assert badge(SMALL).state == BadgeKind.BACKORDER
    # Automatic backorders: the app lets the sold-out variant keep selling, then says so.
    assert [operation_of(c) for c in responses.calls] == [
        "BadgeProduct",
        "BadgeInventoryPolicy",
        "BadgeMetafieldsWrite",
    ]
    assert sent(responses.calls[1])["variables"] == {
        "productId": f"gid://shopify/Product/{PRODUCT_ID}",
        "variants": [
            {"id": f"gid://shopify/ProductVariant/{SMALL}", "inventoryPolicy": "CONTINUE"}
        ],
    }
    eta = next(m for m in sent(responses.calls[2])["variables"]["metafields"] if m["key"] == "eta")
    assert eta["type"] == "date" and eta["value"] == badge(SMALL).eta.isoformat()
    order = json.loads(fixture_bytes("orders-create.json"))
    # Shopify's sample order is a cancelled one; this customer's order stands, placed after
    # the stock figure read above (the sample's own date is years before it).
    order["cancelled_at"] = None
    order["created_at"] = order["updated_at"] = utcnow().isoformat()
    order["line_items"][0]["variant_id"] = int(SMALL)
    order["line_items"][0]["quantity"] = 2
    order["line_items"][0]["current_quantity"] = 2

    assert post_webhook(client, "orders/create", order).status_code == 200

    line = db.session.scalars(select(BackorderLine)).one()
    facts = (line.order.platform_id, line.order_line.platform_id, line.quantity)
    assert facts == ("820982911946154508", "487817672276298554", 2)
    assert line.order.customer_email == "jon@example.com"
    assert (line.status, line.open_quantity) == (BackorderStatus.OPEN, 2)


def test_app_uninstalled_marks_the_shop_and_drops_its_token(app, client):
    factories.shopify_shop()
    response = post_webhook(client, "app/uninstalled", fixture_bytes("app-uninstalled.json"))
    assert response.status_code == 200
    db.session.expire_all()
    shop = db.session.scalars(select(Shop)).one()
    assert shop.status == InstallStatus.UNINSTALLED
    assert shop.access_token_encrypted is None and shop.refresh_token_encrypted is None


def _compliance(name: str) -> bytes:
    return fixture_bytes(name).replace(b"{shop}.myshopify.com", SHOP.encode())


def _seed_backorder_line(shop: Shop, order_id: str, email: str) -> None:
    (variant,) = factories.product(shop, "1", "T", variants=[{"platform_id": "2"}]).variants
    factories.backorder_line(
        variant, order_id, email=email, ordered_at=datetime(2026, 11, 1, tzinfo=UTC)
    )


def test_customer_data_request_reports_what_the_app_holds(app, client):
    shop = factories.shopify_shop()
    _seed_backorder_line(shop, "299938", "john@example.com")
    response = post_webhook(
        client, "customers/data_request", _compliance("customers-data_request.json")
    )
    assert response.status_code == 200
    stored = db.session.scalars(select(WebhookEvent)).one()
    assert stored.status == InboxStatus.PROCESSED
    # The report is kept for the merchant to download, not buried in the attempt log.
    record = db.session.scalars(select(DataRequestReport)).one()
    assert record.webhook_event_id == stored.id
    assert [line["order_id"] for line in record.report["backorder_lines"]] == ["299938"]
    assert record.report["orders"][0]["customer_email"] == "john@example.com"


def test_customers_redact_erases_the_customer_and_shop_redact_everything(app, client):
    shop = factories.shopify_shop()
    _seed_backorder_line(shop, "299938", "john@example.com")
    assert (
        post_webhook(client, "customers/redact", _compliance("customers-redact.json")).status_code
        == 200
    )
    # The person is gone; their units stay in the queue, anonymous, so nobody else's place moves.
    db.session.expire_all()
    order = db.session.scalars(select(Order)).one()
    assert (order.customer_email, order.customer_name) == (None, None)
    assert db.session.scalar(select(func.count()).select_from(BackorderLine)) == 1

    assert post_webhook(client, "shop/redact", _compliance("shop-redact.json")).status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Shop)) == 0


@responses.activate
def test_products_update_with_inventory_items_carries_facts_and_sees_through_the_apps_policy(
    app, client
):
    shop = factories.shopify_shop()
    # The app switched Small to CONTINUE for automatic backorders; the merchant chose DENY.
    factories.product(
        shop,
        PRODUCT_ID,
        "Example T-Shirt",
        variants=[
            {"platform_id": SMALL, "app_policy": "CONTINUE", "merchant_policy": "DENY"},
            {"platform_id": MEDIUM, "tracked": False},
        ],
    )
    payload = json.loads(fixture_bytes("products-update.json"))
    for n, variant in enumerate(payload["variants"]):
        variant["inventory_item_id"] = 9007199254740993 + n  # 2**53 + 1: must stay exact
    payload["variants"][0]["inventory_policy"] = "continue"
    payload["variants"][1]["inventory_policy"] = "continue"
    source = ShopifyWebhooks("shopify-client-secret")

    (changed,) = source.to_events(
        delivery("products/update", json.dumps(payload).encode()), StoreContext()
    )
    small, medium = changed.facts.variants
    assert (small.platform_id, small.inventory_item_id) == (SMALL, "9007199254740993")
    assert small.levels is None  # per-location stock is not in this payload
    assert small.sells_past_zero is True  # the policy the store shows, whoever wrote it
    # `tracked` is not in the payload: the facts leave it unknown.
    assert (small.tracked, medium.tracked) == (None, None)

    catalog.upsert_product(db.session, shop, changed.facts, changed.occurred_at)
    db.session.commit()
    mirrored = {
        v.platform_id: v
        for v in db.session.scalars(select(Variant).where(Variant.shop_id == shop.id))
    }
    assert (
        mirrored[SMALL].sells_past_zero is False
    )  # CONTINUE is the app's doing, not the merchant's
    assert mirrored[MEDIUM].sells_past_zero is True  # the merchant's own CONTINUE
    # The mirror's `tracked` stands.
    assert (mirrored[SMALL].tracked, mirrored[MEDIUM].tracked) == (True, False)
    assert mirrored[SMALL].inventory_item_id == "9007199254740993"

    # A variant the app has never seen: the product is read whole through GraphQL instead.
    payload["variants"].append({**payload["variants"][0], "id": 1, "inventory_item_id": 2})
    policy = {"productVariantsBulkUpdate": {"productVariants": [], "userErrors": []}}
    for answer in (product_answer(), gql_answer(policy), write_answer()):
        responses.post(ENDPOINT, json=answer)
    assert post_webhook(client, "products/update", payload).status_code == 200
    read = responses.calls[0]
    assert operation_of(read) == "BadgeProduct"
    assert sent(read)["variables"] == {"id": f"gid://shopify/Product/{PRODUCT_ID}"}


@responses.activate
def test_inventory_for_an_item_not_yet_mirrored_reads_its_product_by_inventory_item(app, client):
    factories.shopify_shop()
    node = product_answer(small_available=0)["data"]["product"]
    responses.post(ENDPOINT, json=gql_answer({"inventoryItem": {"variant": {"product": node}}}))
    responses.post(ENDPOINT, json=write_answer())

    post_webhook(client, "inventory_levels/update", fixture_bytes("inventory_levels-update.json"))

    read, write = responses.calls
    assert operation_of(read) == "BadgeProductByInventoryItem"
    assert sent(read)["variables"] == {"id": f"gid://shopify/InventoryItem/{SMALL_ITEM}"}
    # The event's own figure (10) applies on top of what was read (0).
    assert badge(SMALL).state == BadgeKind.IN_STOCK
    assert operation_of(write) == "BadgeMetafieldsWrite"
