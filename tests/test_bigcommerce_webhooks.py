"""BigCommerce webhooks through the real endpoint: signed with `standardwebhooks` as BigCommerce
signs them, the documented payloads, and the exact V3 requests the worker then sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from sqlalchemy import func, select

from connectors.bigcommerce import connector as bc_connector
from plugin.extensions import db, shared_cache
from plugin.models import InboxStatus, Variant, VariantBadge, WebhookEvent
from tests import factories
from tests.bigcommerce_support import (
    API,
    RATE_HEADERS,
    STORE,
    documented_payload,
    inventory_item,
    page,
    signed,
    v3_product,
)


@pytest.fixture(autouse=True)
def _fresh_caches(app):
    # The app's process cache (no Redis here) keeps metafield ids and shared stock reads.
    shared_cache.cache.clear()
    bc_connector._clients.clear()
    yield
    shared_cache.cache.clear()
    bc_connector._clients.clear()


def post(client, body: bytes, headers: dict[str, str]):
    return client.post("/webhooks/bigcommerce", data=body, headers=headers)


def stored() -> int:
    return db.session.scalar(select(func.count()).select_from(WebhookEvent))


def sent(call) -> tuple[str, str, dict, object]:
    """(method, path, query, JSON body) of a request the app sent."""
    url = urlsplit(call.request.url)
    body = json.loads(call.request.body) if call.request.body else None
    return call.request.method, url.path, dict(parse_qsl(url.query)), body


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload_name", "store", "signing", "tamper", "error"),
    [
        pytest.param("store-sku-inventory-updated", STORE, {}, True, None, id="bad-signature"),
        pytest.param(
            "store-order-created",
            STORE,
            {"client_secret": "not-ours"},
            False,
            None,
            id="another-apps-secret",
        ),
        pytest.param(
            "store-order-created",
            STORE,
            {"when": datetime.now(UTC) - timedelta(hours=1)},
            False,
            None,
            id="expired-timestamp",
        ),
        pytest.param(
            "store-product-updated",
            STORE,
            {"secret_header": None},
            False,
            "X-Backorder-Secret",
            id="missing-secret-header",
        ),
        pytest.param(
            "store-product-updated",
            STORE,
            {"secret_header": "guess"},
            False,
            None,
            id="wrong-secret-header",
        ),
        pytest.param("store-product-updated", "otherstore", {}, False, None, id="unknown-store"),
    ],
)
def test_unverifiable_deliveries_are_refused_and_nothing_stored(
    client, payload_name, store, signing, tamper, error
):
    factories.bigcommerce_store()
    body, headers = signed(documented_payload(payload_name, store=store), **signing)
    if tamper:
        body = body.replace(b'"value": 5', b'"value": 6')
        assert b'"value": 6' in body
    response = post(client, body, headers)
    assert response.status_code == 401
    if error:
        assert error in response.json["error"]
    assert stored() == 0


# -- deduplication ----------------------------------------------------------------------------


@responses.activate
def test_same_webhook_id_twice_is_stored_and_processed_once(client):
    factories.bigcommerce_store()
    responses.get(f"{API}/v3/catalog/products/205", status=404, json={"status": 404})
    payload = documented_payload("store-product-updated")
    body, headers = signed(payload, msg_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
    first = post(client, body, headers)
    body, headers = signed(payload, msg_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
    second = post(client, body, headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json["duplicate"] is True
    assert stored() == 1
    assert len(responses.calls) == 1  # the resend fetched nothing
    event = db.session.scalars(select(WebhookEvent)).one()
    assert event.deliveries == 2
    assert event.event_id == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


def order_250_answers(product_id: int = 206, variant_id: int = 509, quantity: int = 2) -> None:
    """BigCommerce's V2 order 250 and its products, as the worker fetches them."""
    responses.get(
        f"{API}/v2/orders/250",
        json={
            "id": 250,
            "date_created": "Tue, 25 Jun 2019 16:15:35 +0000",
            "billing_address": {"email": "jane@example.com"},
        },
    )
    responses.get(
        f"{API}/v2/orders/250/products",
        json=[
            {
                "id": 31,
                "order_id": 250,
                "product_id": product_id,
                "variant_id": variant_id,
                "quantity": quantity,
            }
        ],
    )


@responses.activate
def test_an_order_for_a_backordered_variant_records_a_backorder_line(client):
    from plugin.models import BackorderLine, BadgeKind
    from plugin.services.badging import refresh_badge

    shop = factories.bigcommerce_store()
    tee = factories.product(
        shop, "206", "Tee", [{"platform_id": "509", "sells_past_zero": True, "levels": {"1": 0}}]
    )
    [variant] = tee.variants
    assert refresh_badge(db.session, shop, variant, cause="test").state == BadgeKind.BACKORDER
    db.session.commit()
    order_250_answers()

    response = post(client, *signed(documented_payload("store-order-created"), msg_id="o1"))

    assert response.status_code == 200
    line = db.session.scalars(select(BackorderLine)).one()
    facts = (line.order.platform_id, line.order_line.platform_id, line.quantity, line.open_quantity)
    assert facts == ("250", "31", 2, 2)
    assert line.order.customer_email == "jane@example.com"
    assert [urlsplit(c.request.url).path for c in responses.calls][:2] == [
        f"/stores/{STORE}/v2/orders/250",
        f"/stores/{STORE}/v2/orders/250/products",
    ]


@responses.activate
def test_same_order_under_two_webhook_ids_is_one_event_by_payload_hash(client):
    factories.bigcommerce_store()
    order_250_answers(product_id=0, variant_id=0)  # a gift-certificate line: nothing to mirror
    payload = documented_payload("store-order-created")
    assert post(client, *signed(payload, msg_id="msg_a")).status_code == 200
    second = post(client, *signed(payload, msg_id="msg_b"))
    assert second.status_code == 200 and second.json["duplicate"] is True
    event = db.session.scalars(select(WebhookEvent)).one()
    assert event.event_id == f"hash:{STORE}:store/order/created:{payload['hash']}"
    assert {k.lower(): v for k, v in event.headers.items()}["webhook-id"] == "msg_a"


@responses.activate
def test_stock_events_with_the_same_payload_hash_are_both_kept(client):
    """The hash covers the data only: stock set to 5 twice is two changes, both fetched."""
    factories.bigcommerce_store()
    responses.get(
        f"{API}/v3/inventory/items",
        json=page([inventory_item(206, 509, {1: 5})]),
        headers=RATE_HEADERS,
    )
    responses.get(
        f"{API}/v3/catalog/products/206",
        json={"data": v3_product(206, [(509, "Small", 5)]), "meta": {}},
    )
    responses.get(f"{API}/v3/catalog/variants/metafields", json=page([]))
    responses.post(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [{"id": 9001, "resource_id": 509}], "errors": [], "meta": {}},
    )
    payload = documented_payload("store-sku-inventory-updated")
    post(client, *signed(payload, msg_id="msg_1"))
    second = post(client, *signed(payload, msg_id="msg_2"))
    assert second.json["duplicate"] is False
    assert stored() == 2


# -- processing: the exact V3 requests ---------------------------------------------------------


@responses.activate
def test_sku_inventory_event_fetches_stock_and_pushes_a_variant_metafield(client):
    """store/sku/inventory/updated for a variant the app has not seen: the product is fetched
    (catalog + inventory), its variants decided and written as variant metafields.
    The stock read for the product serves the level lookup too: no third inventory call."""
    factories.bigcommerce_store()
    responses.get(
        f"{API}/v3/catalog/products/206",
        json={"data": v3_product(206, [(509, "Small", 0), (510, "Large", 3)]), "meta": {}},
        headers=RATE_HEADERS,
    )
    responses.get(
        f"{API}/v3/inventory/items",
        json=page([inventory_item(206, 509, {1: 0}), inventory_item(206, 510, {1: 3})]),
        headers=RATE_HEADERS,
    )
    responses.get(f"{API}/v3/catalog/variants/metafields", json=page([]), headers=RATE_HEADERS)
    responses.post(
        f"{API}/v3/catalog/variants/metafields",
        json={
            "data": [{"id": 71, "resource_id": 509}],
            "errors": [],
            "meta": {},
        },
        headers=RATE_HEADERS,
    )

    response = post(client, *signed(documented_payload("store-sku-inventory-updated")))
    assert response.status_code == 200

    calls = [sent(c) for c in responses.calls]
    assert calls[0] == (
        "GET",
        f"/stores/{STORE}/v3/catalog/products/206",
        {"include": "variants"},
        None,
    )
    assert calls[1] == (
        "GET",
        f"/stores/{STORE}/v3/inventory/items",
        {"product_id:in": "206", "limit": "1000", "page": "1"},
        None,
    )
    assert calls[2] == (
        "GET",
        f"/stores/{STORE}/v3/catalog/variants/metafields",
        {"namespace": "backorder_badges", "key": "badge", "limit": "250", "page": "1"},
        None,
    )
    method, path, query, body = calls[3]
    assert (method, path, query) == ("POST", f"/stores/{STORE}/v3/catalog/variants/metafields", {})
    # Both variants of the newly mirrored product get their badge, not only the event's.
    assert sorted(body, key=lambda item: item["resource_id"]) == [
        {
            "namespace": "backorder_badges",
            "key": "badge",
            "value": '{"eta":null,"eta_text":"","label":"Out of stock","state":"out_of_stock"}',
            "permission_set": "read_and_sf_access",
            "description": "Backorder Badges: the badge and ETA shown on the product page",
            "resource_id": 509,
        },
        {
            "namespace": "backorder_badges",
            "key": "badge",
            "value": '{"eta":null,"eta_text":"","label":"In stock","state":"in_stock"}',
            "permission_set": "read_and_sf_access",
            "description": "Backorder Badges: the badge and ETA shown on the product page",
            "resource_id": 510,
        },
    ]
    assert len(calls) == 4
    for call in responses.calls:
        assert call.request.headers["X-Auth-Token"] == "bc-access-token"
        assert call.request.headers["Accept"] == "application/json"
    event = db.session.scalars(select(WebhookEvent)).one()
    assert event.status == InboxStatus.PROCESSED
    assert event.topic == "store/sku/inventory/updated"
    assert event.triggered_at == datetime.fromtimestamp(1561480673, tz=UTC)


@responses.activate
def test_second_stock_event_reads_one_inventory_answer_and_updates_the_metafield(client):
    factories.bigcommerce_store()
    responses.get(
        f"{API}/v3/catalog/products/206",
        json={"data": v3_product(206, [(509, "Small", 5)]), "meta": {}},
    )
    inventory = responses.get(
        f"{API}/v3/inventory/items", json=page([inventory_item(206, 509, {1: 5})])
    )
    responses.get(f"{API}/v3/catalog/variants/metafields", json=page([]))
    responses.post(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [{"id": 71, "resource_id": 509}], "errors": [], "meta": {}},
    )
    payload = documented_payload("store-sku-inventory-updated")
    post(client, *signed(payload))
    before = len(responses.calls)

    # The store sells out; the next event only needs the stock and one metafield update.
    inventory.body = json.dumps(page([inventory_item(206, 509, {1: 0})]))
    responses.put(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [{"id": 71, "resource_id": 509}], "errors": [], "meta": {}},
    )
    payload["created_at"] += 60
    post(client, *signed(payload))
    calls = [sent(c) for c in responses.calls[before:]]
    assert [(m, p.rsplit("/v3/", 1)[1]) for m, p, _, _ in calls] == [
        ("GET", "inventory/items"),
        ("PUT", "catalog/variants/metafields"),
    ]
    assert calls[1][3] == [
        {
            "id": 71,
            "value": '{"eta":null,"eta_text":"","label":"Out of stock","state":"out_of_stock"}',
        }
    ]


@responses.activate
def test_product_level_tracking_mirrors_one_variant_and_pushes_a_product_metafield(client):
    factories.bigcommerce_store()
    product = v3_product(167, [(301, "Red", 0), (302, "Blue", 0)], tracking="product", level=0)
    responses.get(f"{API}/v3/catalog/products/167", json={"data": product, "meta": {}})
    responses.get(f"{API}/v3/inventory/items", json=page([inventory_item(167, 301, {1: 4})]))
    responses.get(f"{API}/v3/catalog/products/metafields", json=page([]))
    responses.post(
        f"{API}/v3/catalog/products/metafields",
        json={"data": [{"id": 88, "resource_id": 167}], "errors": [], "meta": {}},
    )

    response = post(client, *signed(documented_payload("store-product-inventory-updated")))
    assert response.status_code == 200

    variants = db.session.scalars(select(Variant)).all()
    assert [(v.platform_id, v.inventory_item_id, v.inventory_total) for v in variants] == [
        ("301", "product:167", 4)
    ]
    method, path, _, body = sent(responses.calls[-1])
    assert (method, path) == ("POST", f"/stores/{STORE}/v3/catalog/products/metafields")
    assert [row["resource_id"] for row in body] == [167]
    assert json.loads(body[0]["value"])["state"] == "in_stock"
    assert body[0]["permission_set"] == "read_and_sf_access"


@responses.activate
def test_product_updated_refetches_the_product(client):
    factories.bigcommerce_store()
    responses.get(
        f"{API}/v3/catalog/products/205",
        json={"data": v3_product(205, [(900, "", 2)], base_variant_id=900), "meta": {}},
    )
    responses.get(f"{API}/v3/inventory/items", json=page([inventory_item(205, 900, {1: 2})]))
    responses.get(f"{API}/v3/catalog/variants/metafields", json=page([]))
    responses.post(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [{"id": 5, "resource_id": 900}], "errors": [], "meta": {}},
    )
    payload = documented_payload("store-product-updated-channel-override")
    assert post(client, *signed(payload)).status_code == 200
    badge = db.session.scalars(select(VariantBadge)).one()
    assert badge.state.value == "in_stock"
    assert badge.pushed_version == badge.version


def test_order_created_is_stored_with_the_order_id_and_no_lines():
    """The payload has only the id: to_events does no HTTP and asks the app to read the order."""
    from webhooks.bigcommerce import BigCommerceWebhooks
    from webhooks.source import StoreContext, StoredDelivery

    payload = documented_payload("store-order-created")
    received_at = datetime.now(UTC)
    delivery = StoredDelivery(
        topic="store/order/created",
        body=json.dumps(payload).encode(),
        received_at=received_at,
        triggered_at=datetime.fromtimestamp(payload["created_at"], tz=UTC),
    )
    with responses.RequestsMock():  # any HTTP request would fail the test
        (order,) = BigCommerceWebhooks("bc-client-secret").to_events(delivery, StoreContext())
    assert order.order_id == "250" and order.order is None
    assert order.fetch.fresh_after == received_at
    assert order.occurred_at == delivery.triggered_at


@responses.activate
def test_a_stock_event_reads_every_location_with_one_inventory_call(client):
    factories.store_locations(factories.bigcommerce_store(), "1", "2")
    responses.get(
        f"{API}/v3/catalog/products/206",
        json={"data": v3_product(206, [(509, "Small", 0)]), "meta": {}},
    )
    inventory = responses.get(
        f"{API}/v3/inventory/items", json=page([inventory_item(206, 509, {1: 0, 2: 3})])
    )
    responses.get(f"{API}/v3/catalog/variants/metafields", json=page([]))
    responses.post(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [{"id": 71, "resource_id": 509}], "errors": [], "meta": {}},
    )
    post(client, *signed(documented_payload("store-sku-inventory-updated")))
    assert inventory.call_count == 1
    variant = db.session.scalars(select(Variant)).one()
    assert {lv.location_id: lv.available for lv in variant.levels} == {"1": 0, "2": 3}
    assert variant.inventory_total == 3


@responses.activate
def test_stores_with_native_backorders_refetch_the_product_on_stock_events(client):
    """Native backorder counts move with stock, and only the whole product carries them."""
    shop = factories.bigcommerce_store()
    shop.native_backorders = True
    db.session.commit()
    responses.get(
        f"{API}/v3/catalog/products/206",
        json={"data": v3_product(206, [(509, "Small", 0)]), "meta": {}},
    )
    responses.get(
        f"{API}/v3/inventory/items",
        json=page([inventory_item(206, 509, {1: 0}, backorder_limit=5, qty_backordered=5)]),
    )
    responses.get(f"{API}/v3/catalog/variants/metafields", json=page([]))
    responses.post(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [{"id": 71, "resource_id": 509}], "errors": [], "meta": {}},
    )
    post(client, *signed(documented_payload("store-sku-inventory-order-updated")))
    variant = db.session.scalars(select(Variant)).one()
    assert (variant.native_backorder_limit, variant.native_backordered) == (5, 5)
    badge = db.session.get(VariantBadge, variant.id)
    # The store's own limit is reached: sold out, whatever the app's own count says.
    assert badge.state.value == "out_of_stock"
    assert "limit reached (5/5)" in badge.reason


@responses.activate
def test_a_late_delivery_of_an_older_event_still_applies_the_stock_read_now(client):
    """BigCommerce retries for up to 48 h: an event created before the last applied one must
    not be skipped as stale, because what it applies is a read made now, not its payload."""
    factories.bigcommerce_store()
    responses.get(
        f"{API}/v3/catalog/products/206",
        json={"data": v3_product(206, [(509, "Small", 5)]), "meta": {}},
    )
    inventory = responses.get(
        f"{API}/v3/inventory/items", json=page([inventory_item(206, 509, {1: 5})])
    )
    responses.get(f"{API}/v3/catalog/variants/metafields", json=page([]))
    responses.post(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [{"id": 71, "resource_id": 509}], "errors": [], "meta": {}},
    )
    responses.put(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [{"id": 71, "resource_id": 509}], "errors": [], "meta": {}},
    )
    newer = documented_payload("store-sku-inventory-updated")
    post(client, *signed(newer))
    inventory.body = json.dumps(page([inventory_item(206, 509, {1: 0})]))
    older = {**newer, "created_at": newer["created_at"] - 3600, "hash": "0" * 40}
    post(client, *signed(older))
    variant = db.session.scalars(select(Variant)).one()
    db.session.refresh(variant)
    assert variant.inventory_total == 0
    assert db.session.get(VariantBadge, variant.id).state.value == "out_of_stock"
