"""The Shopify connector and its GraphQL client against `responses` playing Shopify: the exact
requests sent, bucket pacing, throttled answers, 401 handling, failed writes, and the selling
policy the app writes over the merchant's (reported per push, remembered on the variant)."""

from __future__ import annotations

from datetime import date

import pytest
import requests
import responses
from sqlalchemy import select

from connectors.base import (
    ConnectorError,
    PlatformUnavailable,
    RateLimited,
    ReauthorisationRequired,
    TokenCallbacks,
)
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.graphql import ShopifyGraphQL
from domain.badges import AppliedPolicy, BadgePush
from domain.events import VariantRef
from plugin.extensions import db
from plugin.models import Variant, VariantBadge
from plugin.services.catalog import merchant_sells_past_zero
from plugin.services.push import remember_policies
from tests import factories
from tests.shopify_webhook_helpers import (
    ENDPOINT,
    SHOP,
    gql_answer,
    level_node,
    operation_of,
    product_node,
    sent,
    throttled_answer,
    variant_node,
)

NS = "$app:backorder"


class FakeClock:
    """Time that only moves when the client sleeps, so waits are exact and instant."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds

    def __call__(self) -> float:
        return self.now


class Tokens:
    def __init__(self, token="shpat_old", fresh="shpat_new", refresh_fails=False):
        self.token, self.fresh, self.refresh_fails, self.refreshes = token, fresh, refresh_fails, 0

    def provider(self) -> TokenCallbacks:
        def refresh():
            self.refreshes += 1
            if self.refresh_fails:
                raise ReauthorisationRequired("refresh refused")
            self.token = self.fresh
            return self.token

        return TokenCallbacks(access_token=lambda: self.token, refresh_after_unauthorized=refresh)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def tokens():
    return Tokens()


@pytest.fixture
def client(clock, tokens):
    return ShopifyGraphQL(SHOP, tokens.provider(), sleep=clock.sleep, clock=clock, buckets={})


@pytest.fixture
def connector(client):
    return ShopifyConnector(client)


def push(variant: str, product: str = "10", state="backorder", eta=date(2026, 12, 8), **kw):
    defaults = dict(
        label="Backorder, ships by Tue, December 8, 2026" if state == "backorder" else "In stock",
        eta_text="",
        enforced_policy=None,
        merchant_sells_past_zero=False,
    )
    defaults.update(kw)
    return BadgePush(variant, product, state, eta=eta if state == "backorder" else None, **defaults)


def ok_set():
    return gql_answer({"metafieldsSet": {"metafields": [], "userErrors": []}})


@responses.activate
def test_ten_badges_are_written_in_two_calls_of_at_most_25_metafields(connector):
    responses.post(ENDPOINT, json=ok_set())
    responses.post(ENDPOINT, json=ok_set())
    connector.push_badges([push(str(100 + i)) for i in range(10)])

    assert [operation_of(c) for c in responses.calls] == ["BadgeMetafieldsSet"] * 2
    first, second = (sent(c)["variables"]["metafields"] for c in responses.calls)
    assert (len(first), len(second)) == (24, 6)  # 8 variants x 3, then 2 x 3
    assert first[:3] == [
        {
            "ownerId": "gid://shopify/ProductVariant/100",
            "namespace": NS,
            "key": "state",
            "type": "single_line_text_field",
            "value": "backorder",
        },
        {
            "ownerId": "gid://shopify/ProductVariant/100",
            "namespace": NS,
            "key": "label",
            "type": "single_line_text_field",
            "value": "Backorder, ships by Tue, December 8, 2026",
        },
        {
            "ownerId": "gid://shopify/ProductVariant/100",
            "namespace": NS,
            "key": "eta",
            "type": "date",
            "value": "2026-12-08",
        },
    ]
    assert responses.calls[0].request.headers["X-Shopify-Access-Token"] == "shpat_old"


@responses.activate
def test_a_badge_without_eta_deletes_the_old_eta_in_the_same_request(connector):
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "metafieldsSet": {"metafields": [], "userErrors": []},
                "metafieldsDelete": {"deletedMetafields": [], "userErrors": []},
            }
        ),
    )
    connector.push_badges([push("7", state="in_stock")])
    (call,) = responses.calls
    assert operation_of(call) == "BadgeMetafieldsWrite"
    assert [m["key"] for m in sent(call)["variables"]["metafields"]] == ["state", "label"]
    assert sent(call)["variables"]["deletions"] == [
        {"ownerId": "gid://shopify/ProductVariant/7", "namespace": NS, "key": "eta"}
    ]


@responses.activate
def test_user_errors_fail_the_push_so_the_job_retries(connector):
    error = {
        "field": ["metafields", "0", "value"],
        "message": "Value is invalid",
        "code": "INVALID",
    }
    responses.post(
        ENDPOINT, json=gql_answer({"metafieldsSet": {"metafields": [], "userErrors": [error]}})
    )
    with pytest.raises(ConnectorError, match="Value is invalid"):
        connector.push_badges([push("7")])


def mirrored_badges() -> dict[str, VariantBadge]:
    """Variants 1 and 2 of product 10, 3 and 4 of product 20, each with a badge, by variant id."""
    shop = factories.shopify_shop()
    badge = ("backorder", "Backorder", date(2026, 12, 8))
    for product, variants in (("10", ("1", "2")), ("20", ("3", "4"))):
        factories.product(
            shop, product, variants=[{"platform_id": v, "badge": badge} for v in variants]
        )
    return {
        variant.platform_id: db.session.get(VariantBadge, variant.id)
        for variant in db.session.scalars(select(Variant))
    }


@responses.activate
def test_automatic_backorder_sets_continue_per_product_then_restores_the_merchants_policy(
    app, connector
):
    policy_ok = gql_answer({"productVariantsBulkUpdate": {"productVariants": [], "userErrors": []}})
    for answer in (policy_ok, policy_ok, ok_set(), policy_ok):
        responses.post(ENDPOINT, json=answer)
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "metafieldsSet": {"metafields": [], "userErrors": []},
                "metafieldsDelete": {"deletedMetafields": [], "userErrors": []},
            }
        ),
    )
    badges = mirrored_badges()

    result = connector.push_badges(
        [
            push("1", product="10", enforced_policy="continue"),
            push("2", product="10", enforced_policy="continue"),
            push("3", product="20", enforced_policy="continue"),
            # Already the merchant's own policy: nothing to change.
            push("4", product="20", enforced_policy="continue", merchant_sells_past_zero=True),
        ]
    )
    policy_calls = [c for c in responses.calls if operation_of(c) == "BadgeInventoryPolicy"]
    assert [sent(c)["variables"] for c in policy_calls] == [
        {
            "productId": "gid://shopify/Product/10",
            "variants": [
                {"id": "gid://shopify/ProductVariant/1", "inventoryPolicy": "CONTINUE"},
                {"id": "gid://shopify/ProductVariant/2", "inventoryPolicy": "CONTINUE"},
            ],
        },
        {
            "productId": "gid://shopify/Product/20",
            "variants": [{"id": "gid://shopify/ProductVariant/3", "inventoryPolicy": "CONTINUE"}],
        },
    ]
    assert operation_of(responses.calls[0]) == "BadgeInventoryPolicy"  # before the badge
    # The push reports the policy the app now holds over each merchant's own.
    enforced = AppliedPolicy(app="CONTINUE", merchant="DENY")
    assert result.policies == {"1": enforced, "2": enforced, "3": enforced}
    remember_policies(list(badges.values()), result)
    first = badges["1"].variant
    assert (first.app_policy, first.merchant_policy) == ("CONTINUE", "DENY")
    assert badges["4"].variant.app_policy is None
    # The store now says CONTINUE for variant 1, but the merchant's own choice is still DENY.
    assert merchant_sells_past_zero(first, store_continues=True) is False

    result = connector.push_badges(
        [push("1", product="10", state="in_stock", applied_policy=first.app_policy)]
    )
    restore = responses.calls[-2]
    assert sent(restore)["variables"]["variants"] == [
        {"id": "gid://shopify/ProductVariant/1", "inventoryPolicy": "DENY"}
    ]
    assert result.policies == {"1": None}  # the merchant's own policy is back
    remember_policies(list(badges.values()), result)
    held = {v for v, badge in badges.items() if badge.variant.app_policy is not None}
    assert held == {"2", "3"}


@responses.activate
def test_throttled_answer_waits_for_the_bucket_and_resends_the_same_write(connector, clock):
    responses.post(ENDPOINT, json=throttled_answer(requested=10, available=4, rate=100))
    responses.post(ENDPOINT, json=ok_set())
    connector.push_badges([push("7")])

    first, second = responses.calls
    assert sent(first) == sent(second)  # the same request, nothing dropped
    assert clock.sleeps == [0.06]  # (10 - 4) points at 100 points/s


@responses.activate
def test_http_429_waits_a_short_retry_after_and_resends(connector, clock):
    responses.post(ENDPOINT, status=429, headers={"Retry-After": "0.5"}, body="Too Many Requests")
    responses.post(ENDPOINT, json=ok_set())
    connector.push_badges([push("7")])
    assert len(responses.calls) == 2 and clock.sleeps == [0.5]


@responses.activate
def test_a_long_retry_after_is_handed_to_the_queue_not_slept_in_the_job(connector, clock):
    responses.post(ENDPOINT, status=429, headers={"Retry-After": "2.0"}, body="Too Many Requests")
    with pytest.raises(RateLimited, match="retrying later") as raised:
        connector.push_badges([push("7")])
    assert raised.value.retry_after == 2.0
    assert len(responses.calls) == 1 and clock.sleeps == []


@responses.activate
def test_endless_throttling_fails_the_job_instead_of_hanging_it(connector, clock):
    for _ in range(10):
        responses.post(ENDPOINT, status=429, headers={"Retry-After": "50"}, body="Throttled")
    with pytest.raises(ConnectorError, match="retrying later"):
        connector.push_badges([push("7")])
    assert clock.sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_a_long_bucket_wait_is_not_slept_and_the_request_not_sent(connector, clock):
    # 3 points left at 2 points/s: the next 10-point call would wait 3.5 s.
    responses.post(ENDPOINT, json=gql_answer({"product": None}, requested=10, available=3, rate=2))
    connector.fetch_product("1")
    with pytest.raises(RateLimited) as raised:
        connector.fetch_product("1")
    assert raised.value.retry_after == pytest.approx(3.5)
    assert len(responses.calls) == 1 and clock.sleeps == []


@responses.activate
@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("connection refused"),
        requests.ConnectTimeout("connect timed out"),
        requests.ReadTimeout("read timed out"),
    ],
)
def test_an_unreachable_shopify_raises_at_once_without_sleeping(connector, clock, failure):
    responses.post(ENDPOINT, body=failure)
    with pytest.raises(PlatformUnavailable, match="unreachable"):
        connector.fetch_product("1")
    assert len(responses.calls) == 1 and clock.sleeps == []


@responses.activate
def test_a_5xx_raises_at_once_with_the_retry_after_shopify_gave(connector, clock):
    responses.post(ENDPOINT, status=503, headers={"Retry-After": "30"}, body="unavailable")
    with pytest.raises(PlatformUnavailable, match="HTTP 503") as raised:
        connector.fetch_product("1")
    assert raised.value.retry_after == 30.0
    assert len(responses.calls) == 1 and clock.sleeps == []


@responses.activate
def test_calls_are_paced_from_the_reported_bucket(connector, clock):
    # After this answer the bucket holds 3 points; the next 10-point call must wait 0.07 s.
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {"metafieldsSet": {"metafields": [], "userErrors": []}}, requested=10, available=3
        ),
    )
    responses.post(ENDPOINT, json=ok_set())
    connector.push_badges([push(str(i)) for i in range(9)])  # 8 + 1 variants: two calls
    assert len(responses.calls) == 2
    assert clock.sleeps == [0.07]


@responses.activate
def test_pacing_learns_the_rate_the_bucket_really_refills_at(connector, clock):
    # Other jobs of the app spend the same bucket: it refills at 8 points/s, not 100.
    responses.post(ENDPOINT, json=gql_answer({"product": None}, requested=10, available=5))
    responses.post(ENDPOINT, json=gql_answer({"product": None}, requested=10, available=3))
    responses.post(ENDPOINT, json=gql_answer({"product": None}, requested=10, available=1))
    connector.fetch_product("1")
    clock.now += 1.0
    connector.fetch_product("1")  # 5 + 8/s x 1 s - 10 = 3
    assert clock.sleeps == []
    connector.fetch_product("1")
    assert clock.sleeps == [0.875]  # (10 - 3) points at the 8 points/s seen


@responses.activate
def test_401_refreshes_once_and_retries(connector, tokens):
    responses.post(ENDPOINT, status=401, json={"errors": "[API] Invalid API key or access token"})
    responses.post(ENDPOINT, json=ok_set())
    connector.push_badges([push("7")])
    assert tokens.refreshes == 1
    assert [c.request.headers["X-Shopify-Access-Token"] for c in responses.calls] == [
        "shpat_old",
        "shpat_new",
    ]


@responses.activate
def test_a_second_401_means_the_merchant_must_reauthorise(connector, tokens):
    responses.post(ENDPOINT, status=401, json={"errors": "[API] Invalid API key or access token"})
    responses.post(ENDPOINT, status=401, json={"errors": "[API] Invalid API key or access token"})
    with pytest.raises(ReauthorisationRequired):
        connector.push_badges([push("7")])
    assert tokens.refreshes == 1 and len(responses.calls) == 2


@responses.activate
def test_a_failed_refresh_is_not_retried(client, clock):
    tokens = Tokens(refresh_fails=True)
    client.tokens = tokens.provider()
    responses.post(ENDPOINT, status=401, json={"errors": "[API] Invalid API key or access token"})
    with pytest.raises(ReauthorisationRequired):
        client.execute("query BadgeProduct($id: ID!) { product(id: $id) { id } }", {"id": "x"})
    assert len(responses.calls) == 1


@responses.activate
def test_server_errors_and_graphql_errors_raise_connector_error(connector):
    responses.post(ENDPOINT, status=503, body="unavailable")
    with pytest.raises(ConnectorError, match="HTTP 503"):
        connector.push_badges([push("7")])
    responses.post(ENDPOINT, json={"errors": [{"message": "Field 'x' doesn't exist"}]})
    with pytest.raises(ConnectorError, match="doesn't exist"):
        connector.fetch_product("1")


@responses.activate
def test_fetch_product_reads_policy_and_levels_per_location_across_pages(connector):
    first = variant_node("1", "11", {"24826418": 3, "5555": 2}, more_levels="lv-cursor")
    responses.post(
        ENDPOINT,
        json=gql_answer({"product": product_node("10", [first], more_variants="v-cursor")}),
    )
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "product": {
                    "variants": {
                        "pageInfo": {"hasNextPage": False, "endCursor": None},
                        "nodes": [variant_node("2", "22", {"24826418": 0}, policy="CONTINUE")],
                    }
                }
            }
        ),
    )
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "inventoryItem": {
                    "inventoryLevels": {
                        "pageInfo": {"hasNextPage": False, "endCursor": None},
                        "nodes": [level_node("7777", 4)],
                    }
                }
            }
        ),
    )
    facts = connector.fetch_product("10")

    assert [operation_of(c) for c in responses.calls] == [
        "BadgeProduct",
        "BadgeProductVariants",
        "BadgeInventoryLevels",
    ]
    assert sent(responses.calls[1])["variables"] == {
        "id": "gid://shopify/Product/10",
        "after": "v-cursor",
    }
    assert sent(responses.calls[2])["variables"] == {
        "id": "gid://shopify/InventoryItem/11",
        "after": "lv-cursor",
    }
    one, two = facts.variants
    # Numeric location ids: the same ids inventory_levels/update webhooks carry.
    assert one.levels == {"24826418": 3, "5555": 2, "7777": 4}
    assert (one.inventory_item_id, one.sells_past_zero) == ("11", False)
    assert (two.platform_id, two.sells_past_zero, two.levels) == ("2", True, {"24826418": 0})


@responses.activate
def test_resolve_variant_by_inventory_item_and_fetch_level(connector):
    node = product_node("10", [variant_node("1", "271878346596884015", {"24826418": 10})])
    responses.post(ENDPOINT, json=gql_answer({"inventoryItem": {"variant": {"product": node}}}))
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "inventoryItem": {
                    "inventoryLevel": {"quantities": [{"name": "available", "quantity": 6}]}
                }
            }
        ),
    )
    ref = VariantRef(inventory_item_id="271878346596884015")
    facts = connector.resolve_variant(ref)
    level = connector.fetch_level(ref, "24826418")

    assert facts.platform_id == "10" and facts.variants[0].platform_id == "1"
    assert sent(responses.calls[0])["variables"] == {
        "id": "gid://shopify/InventoryItem/271878346596884015"
    }
    assert operation_of(responses.calls[1]) == "BadgeLevelByInventoryItem"
    assert sent(responses.calls[1])["variables"] == {
        "id": "gid://shopify/InventoryItem/271878346596884015",
        "locationId": "gid://shopify/Location/24826418",
    }
    assert level == 6


@responses.activate
def test_iter_catalog_pages_with_the_cursor(connector):
    def page(ids, more, cursor):
        return gql_answer(
            {
                "productsCount": {"count": 3},
                "products": {
                    "pageInfo": {"hasNextPage": more, "endCursor": cursor},
                    "nodes": [
                        product_node(i, [variant_node(i + "1", i + "2", {"1": 1})]) for i in ids
                    ],
                },
            }
        )

    responses.post(ENDPOINT, json=page(["1", "2"], True, "c1"))
    responses.post(ENDPOINT, json=page(["3"], False, None))
    pages = list(connector.iter_catalog())

    assert [[p.platform_id for p in page.products] for page in pages] == [["1", "2"], ["3"]]
    assert [page.total for page in pages] == [3, 3]
    assert [sent(c)["variables"] for c in responses.calls] == [{"after": None}, {"after": "c1"}]
