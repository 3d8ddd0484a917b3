"""Order lines for `store/order/created`: the V2 order and its products, as BigCommerce
documents them, mapped onto the mirror (product-level tracking included)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from connectors.bigcommerce import connector as bc_connector
from domain.events import ProductFacts, VariantFacts, VariantRef
from plugin.extensions import db
from plugin.models import utcnow
from plugin.services import catalog
from tests import factories
from tests.bigcommerce_support import API, store_connector


@pytest.fixture
def connector():
    bc_connector._clients.clear()
    return store_connector()


def query(call) -> dict:
    return dict(parse_qsl(urlsplit(call.request.url).query))


@responses.activate
def test_fetch_order_reads_the_v2_order_and_its_products(connector):
    responses.get(
        f"{API}/v2/orders/250",
        json={
            "id": 250,
            "date_created": "Tue, 25 Jun 2019 16:15:35 +0000",
            "status": "Awaiting Fulfillment",
            "billing_address": {"first_name": "Jane", "email": "jane@example.com"},
        },
    )
    responses.get(
        f"{API}/v2/orders/250/products",
        json=[
            {"id": 31, "order_id": 250, "product_id": 206, "variant_id": 509, "quantity": 2},
            {"id": 32, "order_id": 250, "product_id": 0, "variant_id": 0, "quantity": 1},
        ],
    )
    order = connector.fetch_order("250")
    assert order.name == "#250"
    assert order.customer.email == "jane@example.com"
    assert order.placed_at.isoformat() == "2019-06-25T16:15:35+00:00"
    # Each line names the variant ordered and the product's stock item, in case the product
    # is tracked at product level (the mirror then holds it under that item).
    assert [(line.line_id, line.variant, line.quantity) for line in order.lines] == [
        ("31", VariantRef(variant_id="509", inventory_item_id="product:206", product_id="206"), 2)
    ]
    assert query(responses.calls[1]) == {"limit": "250", "page": "1"}


@responses.activate
def test_order_lines_of_product_level_products_name_the_products_stock(app, connector):
    shop = factories.bigcommerce_store()
    catalog.upsert_product(
        db.session,
        shop,
        ProductFacts("167", "Sweater", (VariantFacts("301", inventory_item_id="product:167"),)),
        utcnow(),
    )
    responses.get(f"{API}/v2/orders/251", json={"id": 251, "billing_address": {}})
    responses.get(
        f"{API}/v2/orders/251/products",
        json=[{"id": 40, "order_id": 251, "product_id": 167, "variant_id": 302, "quantity": 1}],
    )
    (line,) = connector.fetch_order("251").lines
    assert line.variant == VariantRef(
        variant_id="302", inventory_item_id="product:167", product_id="167"
    )
    # Variant 302 is not mirrored: the line draws on the product's one stock item, kept as 301.
    assert catalog.find_variant(db.session, shop.id, line.variant).platform_id == "301"


@responses.activate
def test_a_deleted_order_is_none(connector):
    responses.get(f"{API}/v2/orders/9", status=404, json=[{"status": 404}])
    assert connector.fetch_order("9") is None
