"""The Shopify connector inside the app's flows: the store's chosen locations, and the
reconciliation CLI healing drift through GraphQL (requests asserted with `responses`)."""

from __future__ import annotations

import pytest
import responses
from sqlalchemy import select

from connectors.shopify import graphql as shopify_graphql
from plugin.extensions import db
from plugin.models import BadgeKind, BadgeTransition, Variant, VariantBadge
from tests.shopify_webhook_helpers import (
    ENDPOINT,
    SHOP,
    fixture_bytes,
    gql_answer,
    make_shopify_shop,
    operation_of,
    post_webhook,
    product_node,
    sent,
    variant_node,
)

PRODUCT_ID, SMALL, SMALL_ITEM = "788032119674292922", "642667041472713922", "271878346596884015"
WAREHOUSE, POPUP = "24826418", "61000099"  # the sample's location, and one the store excludes


@pytest.fixture(autouse=True)
def fresh_buckets():
    shopify_graphql._BUCKETS.clear()
    yield
    shopify_graphql._BUCKETS.clear()


def write_answer() -> dict:
    return gql_answer(
        {
            "metafieldsSet": {"metafields": [], "userErrors": []},
            "metafieldsDelete": {"deletedMetafields": [], "userErrors": []},
        }
    )


def small_badge() -> VariantBadge:
    variant = db.session.scalars(select(Variant).where(Variant.platform_id == SMALL)).one()
    return db.session.get(VariantBadge, variant.id)


@responses.activate
def test_only_the_locations_the_store_chose_count_towards_the_badge(app, client):
    shop = make_shopify_shop()
    shop.settings.location_ids = [WAREHOUSE]
    db.session.commit()
    product = product_node(PRODUCT_ID, [variant_node(SMALL, SMALL_ITEM, {WAREHOUSE: 0, POPUP: 7})])
    responses.post(ENDPOINT, json=gql_answer({"product": product}))
    responses.post(ENDPOINT, json=write_answer())
    post_webhook(client, "products/update", fixture_bytes("products-update.json"))
    # Seven at the pop-up store, none in the warehouse the store sells from.
    assert small_badge().state == BadgeKind.OUT_OF_STOCK

    payload = {"inventory_item_id": int(SMALL_ITEM), "available": 20, "location_id": int(POPUP)}
    post_webhook(client, "inventory_levels/update", payload)
    assert small_badge().state == BadgeKind.OUT_OF_STOCK
    calls = len(responses.calls)

    responses.post(ENDPOINT, json=write_answer())
    payload = {**payload, "location_id": int(WAREHOUSE), "available": 3}
    post_webhook(client, "inventory_levels/update", payload)
    # The webhook's numeric location id matches the one read from the GraphQL GID.
    assert small_badge().state == BadgeKind.IN_STOCK
    assert len(responses.calls) == calls + 1
    variant = db.session.scalars(select(Variant).where(Variant.platform_id == SMALL)).one()
    assert variant.inventory_total == 3
    assert sorted((lv.location_id, lv.available) for lv in variant.levels) == [
        (WAREHOUSE, 3),
        (POPUP, 20),
    ]


@responses.activate
def test_reconcile_cli_pages_the_catalogue_and_heals_a_missed_webhook(app, client):
    make_shopify_shop()
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {"product": product_node(PRODUCT_ID, [variant_node(SMALL, SMALL_ITEM, {WAREHOUSE: 4})])}
        ),
    )
    responses.post(ENDPOINT, json=write_answer())
    post_webhook(client, "products/update", fixture_bytes("products-update.json"))
    assert small_badge().state == BadgeKind.IN_STOCK

    # The sell-out's inventory_levels/update never arrived; the catalogue shows it.
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "productsCount": {"count": 1},
                "products": {
                    "pageInfo": {"hasNextPage": False, "endCursor": "c1"},
                    "nodes": [
                        product_node(PRODUCT_ID, [variant_node(SMALL, SMALL_ITEM, {WAREHOUSE: 0})])
                    ],
                },
            }
        ),
    )
    responses.post(ENDPOINT, json=write_answer())
    result = app.test_cli_runner().invoke(args=["reconcile", "--shop", SHOP])

    assert result.exit_code == 0, result.output
    assert "1 badge(s) fixed" in result.output
    catalog_call = next(c for c in responses.calls if operation_of(c) == "BadgeCatalogPage")
    assert sent(catalog_call)["variables"] == {"after": None}
    db.session.expire_all()
    assert small_badge().state == BadgeKind.OUT_OF_STOCK
    last = db.session.scalars(select(BadgeTransition).order_by(BadgeTransition.id.desc())).first()
    assert last.cause == "reconcile"
    push = responses.calls[-1]
    assert operation_of(push) == "BadgeMetafieldsWrite"
    assert ("state", "out_of_stock") in {
        (m["key"], m["value"]) for m in sent(push)["variables"]["metafields"]
    }
