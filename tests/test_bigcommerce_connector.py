"""The BigCommerce V3 client and connector against `responses`, shaped as BigCommerce documents
each request and answer: rate limits, catalogue mapping, metafield upserts, order lines."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from connectors.base import (
    ConnectorError,
    MemoryCache,
    PlatformUnavailable,
    RateLimited,
    ReauthorisationRequired,
)
from connectors.bigcommerce import client as bc_client
from connectors.bigcommerce import connector as bc_connector
from connectors.bigcommerce.client import BigCommerceClient, api_base
from domain.badges import BadgePush
from domain.events import ProductFacts, VariantFacts
from plugin.extensions import db
from plugin.models import utcnow
from plugin.services import catalog
from plugin.settings import Settings
from tests import factories
from tests.bigcommerce_support import (
    API,
    RATE_HEADERS,
    STORE,
    TOKEN,
    inventory_item,
    page,
    store_connector,
    v3_product,
)
from tests.conftest import base_env


@pytest.fixture(autouse=True)
def _fresh_clients():
    bc_connector._clients.clear()
    yield
    bc_connector._clients.clear()


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def limits(left: int, reset_ms: int = 20000) -> dict[str, str]:
    return {**RATE_HEADERS, "X-Rate-Limit-Requests-Left": str(left),
            "X-Rate-Limit-Time-Reset-Ms": str(reset_ms)}  # fmt: skip


def query(call) -> dict:
    return dict(parse_qsl(urlsplit(call.request.url).query))


def connector_with(sleeps: Sleeps | None = None, cache: MemoryCache | None = None):
    return store_connector(BigCommerceClient(STORE, TOKEN, sleep=sleeps or Sleeps()), cache)


# -- the client and the store's shared quota --------------------------------------------------


@responses.activate
def test_429_waits_reset_ms_and_resends_the_same_write():
    sleeps = Sleeps()
    client = BigCommerceClient(STORE, TOKEN, sleep=sleeps)
    body = [{"id": 7, "value": "{}"}]
    responses.put(
        f"{API}/v3/catalog/variants/metafields",
        status=429,
        json={"status": 429, "title": "Too many requests"},
        headers=limits(0, reset_ms=800),
    )
    responses.put(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [{"id": 7}], "errors": []},
        headers=limits(120),
    )
    result = client.request("PUT", "/v3/catalog/variants/metafields", json=body)
    assert result["data"] == [{"id": 7}]
    assert sleeps == [0.8]
    assert [json.loads(c.request.body) for c in responses.calls] == [body, body]
    assert client.stats.rate_limited == 1


@responses.activate
def test_a_429_with_a_long_reset_is_handed_to_the_queue_not_slept_in_the_job():
    sleeps = Sleeps()
    client = BigCommerceClient(STORE, TOKEN, sleep=sleeps)
    responses.put(
        f"{API}/v3/catalog/variants/metafields",
        status=429,
        json={"status": 429, "title": "Too many requests"},
        headers=limits(0, reset_ms=1500),
    )
    with pytest.raises(RateLimited) as raised:
        client.request("PUT", "/v3/catalog/variants/metafields", json=[{"id": 7}])
    assert raised.value.retry_after == 1.5
    assert sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_repeated_429s_back_off_further_each_time():
    sleeps = Sleeps()
    client = BigCommerceClient(STORE, TOKEN, sleep=sleeps)
    for _ in range(3):
        responses.get(f"{API}/v3/hooks", status=429, headers=limits(0, reset_ms=400))
    responses.get(f"{API}/v3/hooks", json={"data": []}, headers=limits(100))
    assert client.request("GET", "/v3/hooks") == {"data": []}
    assert sleeps == pytest.approx([0.4, 0.6, 0.8])


@responses.activate
def test_429s_that_keep_coming_raise_rate_limited_with_the_next_wait():
    sleeps = Sleeps()
    client = BigCommerceClient(STORE, TOKEN, sleep=sleeps)
    for _ in range(4):
        responses.get(f"{API}/v3/hooks", status=429, headers=limits(0, reset_ms=500))
    with pytest.raises(RateLimited) as raised:
        client.request("GET", "/v3/hooks")
    assert sleeps == [0.5, 0.75, 1.0] and raised.value.retry_after == 1.25
    assert len(responses.calls) == 4


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@responses.activate
def test_paces_when_requests_left_reaches_zero():
    sleeps, clock = Sleeps(), Clock()
    client = BigCommerceClient(STORE, TOKEN, sleep=sleeps, clock=clock)
    responses.get(f"{API}/v3/catalog/products/1", json={"data": {}}, headers=limits(0, 700))
    responses.get(f"{API}/v3/catalog/products/2", json={"data": {}}, headers=limits(149))
    client.request("GET", "/v3/catalog/products/1")
    assert sleeps == []  # nothing to wait for before the first request
    client.request("GET", "/v3/catalog/products/2")
    assert sleeps == [0.7]  # waited for the window to reset instead of taking a 429
    assert client.stats.rate_limited == 0


@responses.activate
def test_a_long_wait_for_the_window_raises_before_sending_and_holds_until_the_reset():
    sleeps, clock = Sleeps(), Clock()
    client = BigCommerceClient(STORE, TOKEN, sleep=sleeps, clock=clock)
    responses.get(f"{API}/v3/catalog/products/1", json={"data": {}}, headers=limits(0, 7000))
    responses.get(f"{API}/v3/catalog/products/2", json={"data": {}}, headers=limits(149))
    client.request("GET", "/v3/catalog/products/1")
    clock.now += 2.0
    with pytest.raises(RateLimited) as raised:
        client.request("GET", "/v3/catalog/products/2")
    assert raised.value.retry_after == pytest.approx(5.0)  # counted from the answer
    assert len(responses.calls) == 1 and sleeps == []
    clock.now += 5.0  # the job comes back once the window has reset
    client.request("GET", "/v3/catalog/products/2")
    assert len(responses.calls) == 2 and sleeps == []


@responses.activate
@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_raise_at_once_for_the_queue_to_retry(status):
    sleeps = Sleeps()
    client = BigCommerceClient(STORE, TOKEN, sleep=sleeps)
    responses.get(f"{API}/v3/hooks", status=status, headers={"Retry-After": "12"})
    with pytest.raises(PlatformUnavailable, match=f"HTTP {status}") as raised:
        client.request("GET", "/v3/hooks")
    assert raised.value.retry_after == 12.0
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("connection refused"),
        requests.ConnectTimeout("connect timed out"),
        requests.ReadTimeout("read timed out"),
    ],
)
def test_an_unreachable_store_raises_at_once_without_sleeping(failure):
    sleeps = Sleeps()
    client = BigCommerceClient(STORE, TOKEN, sleep=sleeps)
    responses.get(f"{API}/v3/hooks", body=failure)
    with pytest.raises(PlatformUnavailable) as raised:
        client.request("GET", "/v3/hooks")
    assert raised.value.retry_after is None
    assert len(responses.calls) == 1 and sleeps == []


def test_calls_connect_fast_and_read_within_a_bound():
    connect, read = bc_client.TIMEOUT
    assert connect <= 3.1 and read <= 30


@responses.activate
def test_refused_token_asks_for_reauthorisation():
    client = BigCommerceClient(STORE, TOKEN, sleep=Sleeps())
    responses.get(f"{API}/v3/hooks", status=401, json={"status": 401})
    with pytest.raises(ReauthorisationRequired):
        client.request("GET", "/v3/hooks")


@responses.activate
def test_no_content_is_an_empty_dict_and_v2_lists_come_wrapped():
    client = BigCommerceClient(STORE, TOKEN, sleep=Sleeps())
    responses.delete(f"{API}/v3/hooks/5", status=204)
    responses.get(f"{API}/v2/orders/1/products", json=[{"id": 1}])
    assert client.request("DELETE", "/v3/hooks/5") == {}
    assert client.request("GET", "/v2/orders/1/products") == {"data": [{"id": 1}]}


@pytest.mark.parametrize(
    ("app_env", "expected"),
    [
        ("test", "http://127.0.0.1:9999/stores/abc"),
        ("development", "http://127.0.0.1:9999/stores/abc"),
        ("production", "https://api.bigcommerce.com/stores/abc"),  # never in production
    ],
)
def test_api_base_can_point_at_a_local_fake(app_env, expected):
    env = base_env(
        APP_ENV=app_env,
        BIGCOMMERCE_API_BASE_OVERRIDE="http://127.0.0.1:9999/",
        DATABASE_URL="postgresql://db/app",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    override = Settings.from_env(env).bigcommerce_api_base_override
    assert BigCommerceClient("abc", "t", base_url=api_base("abc", override)).base_url == expected
    assert BigCommerceClient("abc", "t").base_url == "https://api.bigcommerce.com/stores/abc"


# -- reading the catalogue ------------------------------------------------------------------


@responses.activate
def test_variant_tracking_maps_every_variant_with_stock_per_location(app):
    connector = connector_with()
    responses.get(
        f"{API}/v3/catalog/products/77",
        json={"data": v3_product(77, [(1, "Small", 3), (2, "Large", 0)]), "meta": {}},
    )
    responses.get(
        f"{API}/v3/inventory/items",
        json=page([inventory_item(77, 1, {1: 2, 2: 1}), inventory_item(77, 2, {1: 0, 2: 0})]),
    )
    facts = connector.fetch_product("77")
    assert facts == ProductFacts(
        "77",
        "Product 77",
        (
            VariantFacts("1", "SKU-1", "Small", None, True, False, {"1": 2, "2": 1}),
            VariantFacts("2", "SKU-2", "Large", None, True, False, {"1": 0, "2": 0}),
        ),
    )
    # Once applied, stock events from now on name both locations.
    shop = factories.bigcommerce_store()
    catalog.upsert_product(db.session, shop, facts, utcnow())
    assert catalog.location_ids(db.session, shop.id) == ("1", "2")


@responses.activate
def test_product_level_tracking_is_one_variant_under_the_base_variant():
    connector = connector_with()
    responses.get(
        f"{API}/v3/catalog/products/5",
        json={
            "data": v3_product(5, [(50, "Red", 0), (51, "Blue", 0)], tracking="product", level=9),
            "meta": {},
        },
    )
    item = inventory_item(5, 50, {1: 9})
    item["identity"]["sku_id"] = None
    responses.get(f"{API}/v3/inventory/items", json=page([inventory_item(5, 51, {1: 0}), item]))
    (variant,) = connector.fetch_product("5").variants
    assert (variant.platform_id, variant.inventory_item_id, variant.levels) == (
        "50",
        "product:5",
        {"1": 9},
    )


@responses.activate
def test_untracked_products_need_no_inventory_call_and_preorder_sells_past_zero():
    connector = connector_with()
    responses.get(
        f"{API}/v3/catalog/products/8",
        json={"data": v3_product(8, [(80, "", 0)], tracking="none"), "meta": {}},
    )
    responses.get(
        f"{API}/v3/catalog/products/9",
        json={"data": v3_product(9, [(90, "", 0)], availability="preorder"), "meta": {}},
    )
    responses.get(f"{API}/v3/inventory/items", json=page([inventory_item(9, 90, {1: 0})]))
    (untracked,) = connector.fetch_product("8").variants
    assert (untracked.tracked, untracked.levels) == (False, None)
    (preorder,) = connector.fetch_product("9").variants
    assert preorder.sells_past_zero is True
    assert len(responses.calls) == 3


@responses.activate
def test_native_backorder_fields_replace_the_apps_own(app):
    connector = connector_with()
    responses.get(
        f"{API}/v3/catalog/products/3",
        json={"data": v3_product(3, [(30, "", 0)]), "meta": {}},
    )
    responses.get(
        f"{API}/v3/inventory/items",
        json=page([inventory_item(3, 30, {1: 0}, backorder_limit=10, qty_backordered=4)]),
    )
    facts = connector.fetch_product("3")
    (variant,) = facts.variants
    assert (variant.native_backorder_limit, variant.native_backordered) == (10, 4)
    assert variant.sells_past_zero is True
    # Once applied, the store is known to count backorders itself.
    shop = factories.bigcommerce_store()
    assert shop.native_backorders is False
    catalog.upsert_product(db.session, shop, facts, utcnow())
    assert shop.native_backorders is True


@responses.activate
def test_deleted_product_is_none():
    connector = connector_with()
    responses.get(f"{API}/v3/catalog/products/404", status=404, json={"status": 404})
    assert connector.fetch_product("404") is None


@responses.activate
def test_iter_catalog_pages_with_one_inventory_call_per_page():
    connector = connector_with()
    first = [v3_product(1, [(10, "", 1)]), v3_product(2, [(20, "", 0)], tracking="none")]
    responses.get(
        f"{API}/v3/catalog/products",
        json=page(first, current=1, total_pages=2, total=3),
    )
    responses.get(
        f"{API}/v3/catalog/products",
        json=page([v3_product(3, [(30, "", 5)])], current=2, total_pages=2, total=3),
    )
    responses.get(f"{API}/v3/inventory/items", json=page([inventory_item(1, 10, {1: 1})]))
    responses.get(f"{API}/v3/inventory/items", json=page([inventory_item(3, 30, {1: 5})]))
    pages = list(connector.iter_catalog())
    assert [[p.platform_id for p in pg.products] for pg in pages] == [["1", "2"], ["3"]]
    assert [(pg.next_cursor, pg.total) for pg in pages] == [("2", 3), (None, 3)]
    assert pages[1].products[0].variants[0].levels == {"1": 5}
    sent = [(c.request.method, urlsplit(c.request.url).path, query(c)) for c in responses.calls]
    assert sent == [
        ("GET", f"/stores/{STORE}/v3/catalog/products",
         {"include": "variants", "limit": "250", "page": "1"}),
        ("GET", f"/stores/{STORE}/v3/inventory/items",
         {"product_id:in": "1", "limit": "1000", "page": "1"}),
        ("GET", f"/stores/{STORE}/v3/catalog/products",
         {"include": "variants", "limit": "250", "page": "2"}),
        ("GET", f"/stores/{STORE}/v3/inventory/items",
         {"product_id:in": "3", "limit": "1000", "page": "1"}),
    ]  # fmt: skip


# -- writing badges -----------------------------------------------------------------------------


def badge(vid: str, pid: str, state="backorder", eta=date(2026, 12, 1), inventory_item_id=None):
    return BadgePush(
        variant_platform_id=vid,
        product_platform_id=pid,
        state=state,
        label="Backorder, ships by Tue, December 1, 2026" if state == "backorder" else "In stock",
        eta=eta if state == "backorder" else None,
        eta_text="Tue, December 1, 2026" if state == "backorder" else "",
        enforced_policy=None,
        merchant_sells_past_zero=False,
        inventory_item_id=inventory_item_id,
    )


@responses.activate
def test_push_updates_existing_metafields_and_creates_only_missing_ones():
    shared = MemoryCache()  # the app's cache, shared by every job
    connector = connector_with(cache=shared)
    responses.get(
        f"{API}/v3/catalog/variants/metafields",
        json=page([{"id": 501, "resource_id": 11, "namespace": "backorder_badges",
                    "key": "badge", "value": "{}"}]),
    )  # fmt: skip
    responses.put(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [{"id": 501, "resource_id": 11}], "errors": [], "meta": {}},
    )
    responses.post(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [{"id": 502, "resource_id": 12}], "errors": [], "meta": {}},
    )
    connector.push_badges([badge("11", "1"), badge("12", "1", state="in_stock")])
    calls = [(c.request.method, json.loads(c.request.body or "null")) for c in responses.calls]
    backorder = (
        '{"eta":"2026-12-01","eta_text":"Tue, December 1, 2026",'
        '"label":"Backorder, ships by Tue, December 1, 2026","state":"backorder"}'
    )
    assert calls[1] == ("PUT", [{"id": 501, "value": backorder}])
    assert calls[2][0] == "POST" and [r["resource_id"] for r in calls[2][1]] == [12]

    # The next push (another job) knows both ids: one PUT, no listing, no create.
    connector_with(cache=shared).push_badges([badge("11", "1", state="in_stock"), badge("12", "1")])
    later = responses.calls[3:]
    assert [c.request.method for c in later] == ["PUT"]
    assert [r["id"] for r in json.loads(later[0].request.body)] == [501, 502]


@responses.activate
def test_push_splits_into_batches_of_fifty():
    connector = connector_with()
    responses.get(f"{API}/v3/catalog/variants/metafields", json=page([]))
    responses.post(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [], "errors": [], "meta": {}},
    )
    connector.push_badges([badge(str(i), "1") for i in range(1, 121)])
    posts = [json.loads(c.request.body) for c in responses.calls if c.request.method == "POST"]
    assert [len(b) for b in posts] == [50, 50, 20]


@responses.activate
def test_product_level_badges_go_to_product_metafields():
    connector = connector_with()
    responses.get(f"{API}/v3/catalog/products/metafields", json=page([]))
    responses.post(
        f"{API}/v3/catalog/products/metafields",
        json={"data": [{"id": 9, "resource_id": 5}], "errors": [], "meta": {}},
    )
    # The product's stock is one item ("product:5"): its badge belongs on the product.
    connector.push_badges([badge("50", "5", inventory_item_id="product:5")])
    assert [urlsplit(c.request.url).path for c in responses.calls] == [
        f"/stores/{STORE}/v3/catalog/products/metafields",
        f"/stores/{STORE}/v3/catalog/products/metafields",
    ]
    assert json.loads(responses.calls[1].request.body)[0]["resource_id"] == 5


@responses.activate
def test_a_failed_item_raises_and_the_retry_lists_again_instead_of_duplicating():
    shared = MemoryCache()
    connector = connector_with(cache=shared)
    listing = responses.get(f"{API}/v3/catalog/variants/metafields", json=page([]))
    responses.post(
        f"{API}/v3/catalog/variants/metafields",
        status=422,
        json={"data": [], "errors": [{"status": 409, "title": "already exists"}], "meta": {}},
    )
    with pytest.raises(ConnectorError):
        connector.push_badges([badge("11", "1")])

    # Another worker had created it: the retry finds it and updates it in place.
    listing.body = json.dumps(page([{"id": 77, "resource_id": 11}]))
    responses.put(
        f"{API}/v3/catalog/variants/metafields",
        json={"data": [{"id": 77, "resource_id": 11}], "errors": [], "meta": {}},
    )
    connector_with(cache=shared).push_badges([badge("11", "1")])
    assert [c.request.method for c in responses.calls] == ["GET", "POST", "GET", "PUT"]
