"""Locations show the merchant's names: read from each platform at reconciliation (Shopify's
`locations`, BigCommerce's `GET /v3/inventory/locations`, the sandbox's one default location),
kept per shop, and shown in the settings page's choice of locations, with the id as fallback."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from sqlalchemy import select

from connectors.base import TokenCallbacks
from connectors.bigcommerce import connector as bc_connector
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.graphql import ShopifyGraphQL
from domain.events import LocationFacts
from plugin.extensions import db
from plugin.models import StoreLocation
from plugin.services import catalog, sandbox_store
from plugin.services.reconcile import reconcile_shop
from tests import factories
from tests.bigcommerce_support import API, page, store_connector
from tests.shopify_webhook_helpers import ENDPOINT, SHOP, gql_answer, operation_of, sent


@pytest.fixture(autouse=True)
def _fresh_clients():
    bc_connector._clients.clear()
    yield
    bc_connector._clients.clear()


def location_node(numeric: str, name: str, active: bool = True) -> dict:
    return {"id": f"gid://shopify/Location/{numeric}", "name": name, "isActive": active}


def bc_location(location_id: int, label: str, enabled: bool = True) -> dict:
    """One location of GET /v3/inventory/locations, as documented (LocationResponse)."""
    return {
        "id": location_id,
        "code": f"BIGC-{location_id}",
        "label": label,
        "description": "",
        "managed_by_external_source": False,
        "type_id": "PHYSICAL",
        "enabled": enabled,
        "storefront_visibility": True,
        "time_zone": "Europe/London",
    }


# -- the connectors --------------------------------------------------------------------------


@responses.activate
def test_shopify_reads_active_locations_by_name():
    tokens = TokenCallbacks(access_token=lambda: "shpat_test")
    connector = ShopifyConnector(ShopifyGraphQL(SHOP, tokens, sleep=lambda s: None, buckets={}))
    nodes = [
        location_node("655441491", "Main warehouse"),
        location_node("655441492", "Pop-up (closed)", active=False),
    ]
    responses.post(ENDPOINT, json=gql_answer({"locations": {"nodes": nodes}}))

    assert connector.fetch_locations() == [LocationFacts("655441491", "Main warehouse")]
    call = responses.calls[0]
    assert operation_of(call) == "BackorderLocations"
    assert "locations(first: 250)" in sent(call)["query"]


@responses.activate
def test_bigcommerce_reads_enabled_locations_by_label_page_by_page():
    first = page([bc_location(1, "Main warehouse"), bc_location(2, "Old shop", enabled=False)],
                 current=1, total_pages=2, total=3)  # fmt: skip
    second = page([bc_location(3, "Shop floor")], current=2, total_pages=2, total=3)
    responses.get(f"{API}/v3/inventory/locations", json=first)
    responses.get(f"{API}/v3/inventory/locations", json=second)

    assert store_connector().fetch_locations() == [
        LocationFacts("1", "Main warehouse"),
        LocationFacts("3", "Shop floor"),
    ]
    queries = [dict(parse_qsl(urlsplit(c.request.url).query)) for c in responses.calls]
    assert [q["page"] for q in queries] == ["1", "2"]
    assert queries[0]["is_active"] == "true"


@responses.activate
def test_bigcommerce_without_the_locations_scope_gives_no_names_and_does_not_fail():
    # A store installed before the app asked for store_locations_read_only answers 403.
    responses.get(
        f"{API}/v3/inventory/locations",
        status=403,
        json={"status": 403, "title": "You don't have a required scope to access the endpoint"},
    )
    assert store_connector().fetch_locations() == []


# -- kept per shop ----------------------------------------------------------------------------


def test_names_are_kept_only_for_the_shop_and_the_locations_it_stocks(app):
    mine = factories.bigcommerce_store()
    other = factories.shop("other.sandbox.local")
    factories.store_locations(mine, "1", "2")
    factories.store_locations(other, "1")

    facts = [LocationFacts("1", "Main warehouse"), LocationFacts("9", "No stock here")]
    catalog.name_locations(db.session, mine.id, facts)
    db.session.commit()

    assert catalog.location_names(db.session, mine.id) == {"1": "Main warehouse"}
    assert catalog.location_names(db.session, other.id) == {}
    # A location the store reported no stock at is not added (it would not be offered).
    nine = select(StoreLocation).where(
        StoreLocation.shop_id == mine.id, StoreLocation.location_id == "9"
    )
    assert db.session.scalar(nine) is None

    # A rename on the platform is followed; a location learnt later from stock keeps its name.
    catalog.name_locations(db.session, mine.id, [LocationFacts("1", "Central warehouse")])
    catalog.remember_location(db.session, mine.id, "3", "Shop floor")
    db.session.commit()
    assert catalog.location_names(db.session, mine.id) == {
        "1": "Central warehouse",
        "3": "Shop floor",
    }


# -- read at reconciliation and shown in the settings page ------------------------------------


def seed_sandbox():
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    _product, hooks = sandbox_store.create_product(
        db.session, shop, "Tee", [("S", "TEE-S", 0, "continue")]
    )
    db.session.commit()
    sandbox_store.deliver(shop, hooks)
    return shop


def test_sandbox_reconciliation_names_its_location_and_the_page_shows_it(client):
    shop = seed_sandbox()
    before = client.get("/sandbox/settings").get_data(as_text=True)
    assert "Location default" in before  # the id, until the platform named it

    reconcile_shop(db.session, shop)
    db.session.commit()

    assert catalog.location_names(db.session, shop.id) == {"default": "Default location"}
    page_html = client.get("/sandbox/settings").get_data(as_text=True)
    assert 'name="location" value="default" checked> Default location' in page_html
    assert "Location default" not in page_html
