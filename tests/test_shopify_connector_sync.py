"""The Shopify connector inside the app's flows: the store's chosen locations, the
reconciliation CLI healing drift, and the shop's real stored tokens (refresh before expiry,
one refresh after a 401, re-authorisation when that fails); requests asserted with `responses`.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from sqlalchemy import select

from connectors.base import ReauthorisationRequired
from connectors.shopify import graphql as shopify_graphql
from domain.badges import BadgePush
from plugin.extensions import db
from plugin.models import BadgeKind, BadgeTransition, InstallStatus, Shop, Variant, VariantBadge
from plugin.platforms import connector_for
from plugin.services import badge_labels
from plugin.services.tokens import vault
from tests.factories import shopify_shop
from tests.shopify_install_helpers import STORE
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
    shop = shopify_shop()
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
    shopify_shop()
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
    responses.post(ENDPOINT, json=definitions_answer(["state", "label", "eta"]))
    responses.post(ENDPOINT, json=gql_answer({"shop": STORE}))
    responses.post(ENDPOINT, json=gql_answer({"shopLocales": [{"locale": "en", "primary": True}]}))
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
    # The locations' names (none here), read after the catalogue.
    responses.post(ENDPOINT, json=gql_answer({"locations": {"nodes": []}}))
    no_orders = {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}
    responses.post(ENDPOINT, json=gql_answer({"orders": no_orders}))
    # The storefront labels and colours: already there, unchanged, so only read.
    shop_config = badge_labels.storefront_config(db.session.scalars(select(Shop)).one())
    responses.post(ENDPOINT, json=storefront_config_answer(shop_config))
    responses.post(ENDPOINT, json=write_answer())
    result = app.test_cli_runner().invoke(args=["reconcile", "--shop", SHOP])

    assert result.exit_code == 0, result.output
    assert "1 badge(s) fixed" in result.output
    catalog_call = next(c for c in responses.calls if operation_of(c) == "BadgeCatalogPage")
    assert sent(catalog_call)["variables"] == {"after": None}
    db.session.expire_all()
    assert small_badge().state == BadgeKind.OUT_OF_STOCK
    # The store's own calendar came with it: ETAs are computed in its zone.
    shop = db.session.scalars(select(Shop)).one()
    assert (shop.timezone, shop.locale, shop.country) == ("America/Los_Angeles", "en", "US")
    last = db.session.scalars(select(BadgeTransition).order_by(BadgeTransition.id.desc())).first()
    assert last.cause == "reconcile"
    push = responses.calls[-1]
    assert operation_of(push) == "BadgeMetafieldsWrite"
    assert ("state", "out_of_stock") in {
        (m["key"], m["value"]) for m in sent(push)["variables"]["metafields"]
    }


def storefront_config_answer(value: dict | None, storefront: str | None = "PUBLIC_READ") -> dict:
    """BackorderStorefrontConfig as Shopify answers it: the shop, its storefront metafield
    (null when never written) and the SHOP definition (none when `storefront` is None)."""
    nodes = (
        [
            {
                "id": "gid://shopify/MetafieldDefinition/7",
                "key": "storefront",
                "access": {"storefront": storefront},
            }
        ]
        if storefront
        else []
    )
    return gql_answer(
        {
            "shop": {
                "id": "gid://shopify/Shop/548380009",
                "metafield": {"jsonValue": value} if value is not None else None,
            },
            "metafieldDefinitions": {"nodes": nodes},
        }
    )


def definitions_answer(keys, storefront="PUBLIC_READ") -> dict:
    nodes = [
        {
            "id": f"gid://shopify/MetafieldDefinition/{i}",
            "key": k,
            "access": {"storefront": storefront},
        }
        for i, k in enumerate(keys, start=1)
    ]
    return gql_answer({"metafieldDefinitions": {"nodes": nodes}})


def definition_answer(mutation: str, key: str) -> dict:
    field = "createdDefinition" if mutation.endswith("Create") else "updatedDefinition"
    return gql_answer(
        {
            mutation: {
                field: {"id": "gid://shopify/MetafieldDefinition/9", "key": key},
                "userErrors": [],
            }
        }
    )


@responses.activate
def test_prepare_store_grants_the_theme_storefront_read_access_to_badge_metafields(app):
    shop = shopify_shop()
    responses.post(ENDPOINT, json=definitions_answer(["label"], storefront="NONE"))
    responses.post(ENDPOINT, json=definition_answer("metafieldDefinitionCreate", "state"))
    responses.post(ENDPOINT, json=definition_answer("metafieldDefinitionUpdate", "label"))
    responses.post(ENDPOINT, json=definition_answer("metafieldDefinitionCreate", "eta"))

    connector_for(shop, db.session).prepare_store()

    calls = [(operation_of(c), sent(c)["variables"]) for c in responses.calls]
    assert calls[0] == ("BadgeMetafieldDefinitions", {"namespace": "$app:backorder"})
    access = {"admin": "MERCHANT_READ", "storefront": "PUBLIC_READ"}
    assert calls[1] == (
        "BadgeMetafieldDefinitionCreate",
        {
            "definition": {
                "namespace": "$app:backorder",
                "key": "state",
                "ownerType": "PRODUCTVARIANT",
                "name": "Backorder badge state",
                "type": "single_line_text_field",
                "access": access,
            }
        },
    )
    assert calls[2] == (
        "BadgeMetafieldDefinitionUpdate",
        {
            "definition": {
                "namespace": "$app:backorder",
                "key": "label",
                "ownerType": "PRODUCTVARIANT",
                "access": access,
            }
        },
    )
    assert calls[3][0] == "BadgeMetafieldDefinitionCreate"
    assert calls[3][1]["definition"]["type"] == "date"
    assert len(calls) == 4

    # Once they exist with storefront access, a second run only reads.
    responses.calls.reset()
    responses.post(ENDPOINT, json=definitions_answer(["state", "label", "eta"]))
    connector_for(shop, db.session).prepare_store()
    assert [operation_of(c) for c in responses.calls] == ["BadgeMetafieldDefinitions"]


TOKEN_ENDPOINT = f"https://{SHOP}/admin/oauth/access_token"


def a_badge() -> BadgePush:
    return BadgePush(SMALL, PRODUCT_ID, "in_stock", "In stock", None, "", None, False)


def granted(token: str) -> dict:
    return {
        "access_token": token,
        "scope": "read_products,write_products,read_inventory",
        "expires_in": 3600,
        "refresh_token": "shprt_new",
        "refresh_token_expires_in": 7776000,
    }


@responses.activate
def test_a_401_refreshes_the_stored_token_once_and_the_write_lands(app):
    shop = shopify_shop(token="shpat_old", refresh_token="shprt_old", expires_in=timedelta(hours=1))
    responses.post(ENDPOINT, status=401, json={"errors": "[API] Invalid API key or access token"})
    responses.post(TOKEN_ENDPOINT, json=granted("shpat_new"))
    responses.post(ENDPOINT, json=write_answer())

    connector_for(shop, db.session).push_badges([a_badge()])

    graphql = [c for c in responses.calls if c.request.url == ENDPOINT]
    assert [c.request.headers["X-Shopify-Access-Token"] for c in graphql] == [
        "shpat_old",
        "shpat_new",
    ]
    assert sent(graphql[0]) == sent(graphql[1])  # the same write, sent again
    db.session.expire_all()
    assert vault().decrypt(db.session.get(Shop, shop.id).access_token_encrypted) == "shpat_new"


@responses.activate
def test_a_401_whose_refresh_is_refused_marks_the_shop_for_reauthorisation(app):
    shop = shopify_shop(token="shpat_old", refresh_token="shprt_old", expires_in=timedelta(hours=1))
    responses.post(ENDPOINT, status=401, json={"errors": "[API] Invalid API key or access token"})
    responses.post(TOKEN_ENDPOINT, status=400, json={"error": "invalid_grant"})

    with pytest.raises(ReauthorisationRequired):
        connector_for(shop, db.session).push_badges([a_badge()])

    assert len([c for c in responses.calls if c.request.url == ENDPOINT]) == 1
    db.session.rollback()
    assert db.session.get(Shop, shop.id).status == InstallStatus.NEEDS_REAUTH


@responses.activate
def test_a_refreshed_token_that_is_refused_too_marks_the_shop_for_reauthorisation(app):
    shop = shopify_shop(token="shpat_old", refresh_token="shprt_old", expires_in=timedelta(hours=1))
    unauthorised = {"errors": "[API] Invalid API key or access token"}
    responses.post(ENDPOINT, status=401, json=unauthorised)
    responses.post(TOKEN_ENDPOINT, json=granted("shpat_new"))
    responses.post(ENDPOINT, status=401, json=unauthorised)

    with pytest.raises(ReauthorisationRequired):
        connector_for(shop, db.session).push_badges([a_badge()])

    # One refresh only, and the merchant is asked to re-authorise (it survives the job's rollback).
    assert len([c for c in responses.calls if c.request.url == TOKEN_ENDPOINT]) == 1
    db.session.rollback()
    assert db.session.get(Shop, shop.id).status == InstallStatus.NEEDS_REAUTH


@responses.activate
def test_a_token_about_to_expire_is_refreshed_before_the_call(app):
    shop = shopify_shop(
        token="shpat_old", refresh_token="shprt_old", expires_in=timedelta(minutes=2)
    )
    responses.post(TOKEN_ENDPOINT, json=granted("shpat_fresh"))
    responses.post(ENDPOINT, json=write_answer())

    connector_for(shop, db.session).push_badges([a_badge()])

    assert [c.request.url for c in responses.calls] == [TOKEN_ENDPOINT, ENDPOINT]
    assert responses.calls[1].request.headers["X-Shopify-Access-Token"] == "shpat_fresh"
