"""On BigCommerce, "Backorder automatically" is enforced through the store's native backorders:
the connector raises an item's `backorder_limit` at each location (`PUT /v3/inventory/
locations/{id}/items`, as BigCommerce documents) so checkout accepts orders past zero, and puts
the merchant's 0 back once the app stops. Where the store has no native backorders it cannot be
enforced, so the settings page does not offer it, says why, and refuses a saved True."""

from __future__ import annotations

import json
from datetime import date
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors.bigcommerce import connector as bc_connector
from connectors.bigcommerce.backorders import AUTO_BACKORDER_LIMIT
from domain.badges import AppliedPolicy, BadgePush
from plugin.extensions import db
from plugin.models import Platform, StoreSettings, Variant, utcnow
from plugin.services import catalog, settings_form
from plugin.services.shops import find_shop
from tests import factories
from tests.bc_callback_helpers import FakeStore, load_jwt
from tests.bigcommerce_support import API, inventory_item, page, store_connector, v3_product

STORE_HASH = "n4tive01"
OWNER = 7654321


@pytest.fixture(autouse=True)
def _fresh_clients():
    bc_connector._clients.clear()
    yield
    bc_connector._clients.clear()


def push(vid="30", pid="3", *, enforced=None, merchant_continues=False, applied=None, item=None):
    return BadgePush(
        variant_platform_id=vid,
        product_platform_id=pid,
        state="backorder",
        label="Backorder, ships by Tue, December 1, 2026",
        eta=date(2026, 12, 1),
        eta_text="Tue, December 1, 2026",
        enforced_policy=enforced,
        merchant_sells_past_zero=merchant_continues,
        inventory_item_id=item,
        applied_policy=applied,
    )


def metafields_answer(kind: str = "variants") -> None:
    """The badge metafield writes every push makes (none listed yet, so they are created)."""
    responses.get(f"{API}/v3/catalog/{kind}/metafields", json=page([]))
    responses.post(
        f"{API}/v3/catalog/{kind}/metafields",
        json={"data": [{"id": 900, "resource_id": 30}], "errors": [], "meta": {}},
    )


def native_item(product_id=3, variant_id=30, levels=None, limit=0, backordered=0) -> dict:
    """An Inventory API item of a store with native backorders (limit and count per location)."""
    return inventory_item(
        product_id, variant_id, levels or {1: 0, 2: 0},
        backorder_limit=limit, qty_backordered=backordered,
    )  # fmt: skip


def settings_put(location_id: int) -> str:
    return f"{API}/v3/inventory/locations/{location_id}/items"


# -- the connector ---------------------------------------------------------------------------


@responses.activate
def test_backordering_automatically_raises_the_limit_at_every_location():
    metafields_answer()
    responses.get(f"{API}/v3/inventory/items", json=page([native_item()]))
    for loc in (1, 2):
        responses.put(settings_put(loc), json={"transaction_id": f"tx-{loc}"})

    result = store_connector().push_badges([push(enforced="continue")])

    assert result.policies == {"30": AppliedPolicy(app="CONTINUE", merchant="DENY")}
    writes = [
        (urlsplit(c.request.url).path, json.loads(c.request.body))
        for c in responses.calls
        if c.request.method == "PUT"
    ]
    expected = {
        "settings": [{"identity": {"variant_id": 30}, "backorder_limit": AUTO_BACKORDER_LIMIT}]
    }
    assert [(path.rsplit("/v3/", 1)[1], body) for path, body in writes] == [
        ("inventory/locations/1/items", expected),
        ("inventory/locations/2/items", expected),
    ]  # fmt: skip
    inventory_read = next(c for c in responses.calls if "/v3/inventory/items" in c.request.url)
    assert parse_qs(urlsplit(inventory_read.request.url).query)["product_id:in"] == ["3"]


@responses.activate
def test_a_limit_listed_among_the_locations_settings_counts_as_native_backorders():
    # The Inventory API lists a location's other per-item settings (safety_stock, is_in_stock,
    # warning_level) under `settings`; a `backorder_limit` there is read the same way.
    metafields_answer()
    item = inventory_item(3, 30, {1: 0})
    item["locations"][0]["settings"]["backorder_limit"] = 0
    responses.get(f"{API}/v3/inventory/items", json=page([item]))
    responses.put(settings_put(1), json={"transaction_id": "tx-1"})

    result = store_connector().push_badges([push(enforced="continue")])

    assert result.policies == {"30": AppliedPolicy(app="CONTINUE", merchant="DENY")}
    (body,) = [json.loads(c.request.body) for c in responses.calls if c.request.method == "PUT"]
    assert body == {
        "settings": [{"identity": {"variant_id": 30}, "backorder_limit": AUTO_BACKORDER_LIMIT}]
    }


@responses.activate
def test_turning_it_off_puts_the_merchants_zero_back():
    metafields_answer()
    responses.get(f"{API}/v3/inventory/items", json=page([native_item(limit=AUTO_BACKORDER_LIMIT)]))
    for loc in (1, 2):
        responses.put(settings_put(loc), json={"transaction_id": f"tx-{loc}"})

    result = store_connector().push_badges([push(enforced=None, applied="CONTINUE")])

    assert result.policies == {"30": None}
    bodies = [json.loads(c.request.body) for c in responses.calls if c.request.method == "PUT"]
    assert bodies == [{"settings": [{"identity": {"variant_id": 30}, "backorder_limit": 0}]}] * 2


@responses.activate
def test_a_product_tracked_as_a_whole_is_named_by_product():
    metafields_answer("products")
    item = native_item(product_id=4, variant_id=40, levels={1: 0})
    item["identity"]["sku_id"] = None
    responses.get(f"{API}/v3/inventory/items", json=page([item]))
    responses.put(settings_put(1), json={"transaction_id": "tx-1"})

    result = store_connector().push_badges([push("40", "4", enforced="continue", item="product:4")])

    assert result.policies == {"40": AppliedPolicy(app="CONTINUE", merchant="DENY")}
    (body,) = [json.loads(c.request.body) for c in responses.calls if c.request.method == "PUT"]
    assert body == {
        "settings": [{"identity": {"product_id": 4}, "backorder_limit": AUTO_BACKORDER_LIMIT}]
    }


@responses.activate
def test_the_merchants_own_limit_and_a_store_without_native_backorders_are_left_alone():
    metafields_answer()
    # Variant 31: the merchant allows 5 backorders (BigCommerce enforces that limit itself, so a
    # "limit reached" decision needs no write). Variant 32: no backorder_limit anywhere, the
    # store's native backorders are off, so there is nothing to enforce with.
    responses.get(
        f"{API}/v3/inventory/items",
        json=page([native_item(3, 31, limit=5, backordered=5), inventory_item(3, 32, {1: 0})]),
    )

    result = store_connector().push_badges(
        [
            push("31", enforced="deny", merchant_continues=True),
            push("32", enforced="continue"),
        ]
    )

    assert result.policies == {}
    assert [c for c in responses.calls if c.request.method == "PUT"] == []


@responses.activate
def test_nothing_to_enforce_costs_no_inventory_read():
    metafields_answer()
    result = store_connector().push_badges([push(enforced=None)])
    assert result.policies == {}
    assert not [c for c in responses.calls if "/v3/inventory/" in c.request.url]


@responses.activate
def test_a_store_that_has_not_granted_inventory_writes_still_gets_its_badges():
    metafields_answer()
    responses.get(f"{API}/v3/inventory/items", json=page([native_item(levels={1: 0})]))
    responses.put(
        settings_put(1),
        status=403,
        json={"status": 403, "title": "You don't have a required scope to access the endpoint"},
    )
    # Nothing recorded: the next push tries again once the scope is granted.
    assert store_connector().push_badges([push(enforced="continue")]).policies == {}


# -- what the app remembers, read back ------------------------------------------------------


@responses.activate
def test_the_raised_limit_read_back_is_not_taken_for_the_merchants_choice(app):
    shop = factories.bigcommerce_store()
    responses.get(
        f"{API}/v3/catalog/products/3", json={"data": v3_product(3, [(30, "", 0)]), "meta": {}}
    )
    responses.get(f"{API}/v3/inventory/items", json=page([native_item(limit=AUTO_BACKORDER_LIMIT)]))
    (variant,) = catalog.upsert_product(
        db.session, shop, store_connector().fetch_product("3"), utcnow()
    )
    # Before: the app had raised it over the merchant's "stop at zero".
    variant.app_policy, variant.merchant_policy = "CONTINUE", "DENY"
    db.session.flush()
    catalog.upsert_product(db.session, shop, store_connector().fetch_product("3"), utcnow())
    assert db.session.get(Variant, variant.id).sells_past_zero is False


# -- the settings page ------------------------------------------------------------------------


@pytest.fixture
def bigcommerce_token(client):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeStore(STORE_HASH).install(rsps)
        factories.bigcommerce_store(
            STORE_HASH,
            token=f"token-{STORE_HASH}",
            webhook_secret=f"secret-{STORE_HASH}",
            owner=OWNER,
        )
        response = client.get(
            "/bigcommerce/load",
            query_string={
                "signed_payload_jwt": load_jwt(STORE_HASH, user_id=OWNER, owner_id=OWNER)
            },
        )
        assert response.status_code == 302
        yield parse_qs(urlsplit(response.headers["Location"]).query)["token"][0]


def valid_form(**overrides) -> dict:
    form = {
        "enabled": "on",
        "label_in_stock": "In stock",
        "label_backorder": "Backorder, ships by {eta}",
        "label_out_of_stock": "Out of stock",
        "color_in_stock": "#1a7f37",
        "color_backorder": "#9a6700",
        "color_out_of_stock": "#cf222e",
        "default_lead_days": "14",
    }
    form.update(overrides)
    return form


def test_without_native_backorders_it_is_not_offered_and_a_saved_true_is_refused(
    client, bigcommerce_token
):
    url = f"/bigcommerce/app/{STORE_HASH}?token={bigcommerce_token}"
    page_html = unescape(client.get(url).get_data(as_text=True))
    assert 'name="auto_backorder"' not in page_html
    assert "Backorder automatically is not available for this store." in page_html
    assert "Turn on backorders in your store's inventory settings" in page_html

    refused = client.post(url, data=valid_form(auto_backorder="on"))
    assert refused.status_code == 422
    html = unescape(refused.get_data(as_text=True))
    assert 'id="auto_backorder-error"' in html
    assert "checkout refuses orders once stock reaches zero" in html
    db.session.expire_all()
    assert db.session.query(StoreSettings).one().auto_backorder is False

    # The rest of the form saves; the option stays off.
    assert client.post(url, data=valid_form()).status_code == 302


def test_with_native_backorders_it_is_offered_and_saved(client, bigcommerce_token):
    shop = find_shop(db.session, Platform.BIGCOMMERCE, STORE_HASH)
    shop.native_backorders = True
    db.session.commit()
    url = f"/bigcommerce/app/{STORE_HASH}?token={bigcommerce_token}"
    page_html = client.get(url).get_data(as_text=True)
    assert 'name="auto_backorder"' in page_html
    assert "not available for this store" not in page_html

    assert client.post(url, data=valid_form(auto_backorder="on")).status_code == 302
    db.session.expire_all()
    assert db.session.query(StoreSettings).one().auto_backorder is True


def test_the_decision_is_platform_neutral(app):
    sandbox = factories.shop()
    shopify = factories.shopify_shop()
    bigcommerce = factories.bigcommerce_store()
    assert settings_form.auto_backorder_refusal(sandbox) is None
    assert settings_form.auto_backorder_refusal(shopify) is None
    assert settings_form.auto_backorder_refusal(bigcommerce) == (
        settings_form.AUTO_BACKORDER_UNAVAILABLE
    )
    bigcommerce.native_backorders = True
    assert settings_form.auto_backorder_refusal(bigcommerce) is None


def test_a_saved_auto_backorder_the_store_cannot_enforce_promises_no_backorder(app):
    """Saved before the option was refused there: checkout would refuse, so the badge must not
    offer a backorder."""
    from plugin.models import BadgeKind
    from plugin.services.badging import decide_for_variant

    store = factories.bigcommerce_store()
    store.native_backorders = False
    store.settings.auto_backorder = True
    db.session.commit()
    variant = factories.product(
        store, "77", "Tee", [{"platform_id": "770", "inventory_total": 0, "tracked": True}]
    ).variants[0]
    assert decide_for_variant(db.session, store, variant).state == BadgeKind.OUT_OF_STOCK
    store.native_backorders = True
    db.session.commit()
    assert decide_for_variant(db.session, store, variant).state == BadgeKind.BACKORDER
