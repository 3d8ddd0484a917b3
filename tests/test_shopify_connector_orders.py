"""The Shopify connector's order and store reads against `responses` playing GraphQL Admin
2025-01: the exact documents and variables sent, the mapping onto OrderFacts and StoreFacts,
paging past the first page of lines and fulfilments, and customer data Shopify withholds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import responses

from connectors.base import ConnectorError, TokenCallbacks
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.graphql import ShopifyGraphQL
from domain.events import Customer, OrderLine, StoreFacts, VariantRef
from tests.shopify_webhook_helpers import ENDPOINT, SHOP, gql_answer, operation_of, sent

ORDER = "820982911946154508"
ORDER_GID = f"gid://shopify/Order/{ORDER}"
SMALL, MEDIUM, PRODUCT = "642667041472713922", "757650484644203962", "788032119674292922"


@pytest.fixture
def connector():
    tokens = TokenCallbacks(access_token=lambda: "shpat_test")
    return ShopifyConnector(ShopifyGraphQL(SHOP, tokens, sleep=lambda s: None, buckets={}))


def page(nodes: list, next_cursor: str | None = None) -> dict:
    return {
        "pageInfo": {"hasNextPage": next_cursor is not None, "endCursor": next_cursor},
        "nodes": nodes,
    }


def line_node(line_id, variant, quantity, current=None, refundable=None, product=PRODUCT):
    return {
        "id": f"gid://shopify/LineItem/{line_id}",
        "quantity": quantity,
        "currentQuantity": quantity if current is None else current,
        "refundableQuantity": quantity if refundable is None else refundable,
        "variant": {"id": f"gid://shopify/ProductVariant/{variant}"} if variant else None,
        "product": {"id": f"gid://shopify/Product/{product}"} if product else None,
    }


def fulfillment_node(fulfillment_id, status, units: dict, more: str | None = None) -> dict:
    return {
        "id": f"gid://shopify/Fulfillment/{fulfillment_id}",
        "status": status,
        "fulfillmentLineItems": page(
            [
                {"quantity": q, "lineItem": {"id": f"gid://shopify/LineItem/{i}"}}
                for i, q in units.items()
            ],
            more,
        ),
    }


def order_node(lines, fulfillments=(), *, count=None, more_lines=None, **fields) -> dict:
    node = {
        "id": ORDER_GID,
        "name": "#9999",
        "createdAt": "2026-11-20T09:00:00Z",
        "updatedAt": "2026-11-20T09:05:00Z",
        "cancelledAt": None,
        "email": "jon@example.com",
        "customerLocale": "fr-CA",
        "customer": {"firstName": "John", "lastName": "Smith"},
        "lineItems": page(list(lines), more_lines),
        "fulfillmentsCount": {"count": len(fulfillments) if count is None else count},
        "fulfillments": list(fulfillments),
    }
    node.update(fields)
    return node


@responses.activate
def test_fetch_order_reads_the_order_by_gid_and_maps_every_line(connector):
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "order": order_node(
                    [
                        line_node(1, SMALL, 5, current=3, refundable=4),
                        line_node(2, MEDIUM, 1),
                        line_node(3, None, 1, product=None),  # a custom item: no variant
                    ],
                    [
                        fulfillment_node(71, "SUCCESS", {1: 1, 2: 1}),
                        fulfillment_node(72, "CANCELLED", {1: 2}),
                        fulfillment_node(73, "OPEN", {1: 1}),
                    ],
                )
            }
        ),
    )
    facts = connector.fetch_order(ORDER)

    (call,) = responses.calls
    assert operation_of(call) == "BackorderOrder"
    assert sent(call)["variables"] == {"id": ORDER_GID}
    assert facts.order_id == ORDER and facts.name == "#9999"
    assert facts.placed_at == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert facts.updated_at == datetime(2026, 11, 20, 9, 5, tzinfo=UTC)
    assert facts.cancelled_at is None
    assert facts.customer == Customer(email="jon@example.com", name="John Smith", locale="fr-CA")
    assert facts.admin_url == f"https://admin.shopify.com/store/backorder-demo/orders/{ORDER}"
    assert facts.lines == (
        OrderLine(
            line_id="1",
            variant=VariantRef(variant_id=SMALL, product_id=PRODUCT),
            quantity=5,
            current_quantity=3,
            # Shipped: the successful and the open fulfilment; the cancelled one shipped nothing.
            fulfilled_quantity=2,
            refunded_quantity=1,  # quantity - refundableQuantity
        ),
        OrderLine(
            line_id="2",
            variant=VariantRef(variant_id=MEDIUM, product_id=PRODUCT),
            quantity=1,
            current_quantity=1,
            fulfilled_quantity=1,
        ),
    )


@responses.activate
def test_a_cancelled_order_says_when(connector):
    node = order_node([line_node(1, SMALL, 2, current=0)], cancelledAt="2026-11-21T10:00:00Z")
    responses.post(ENDPOINT, json=gql_answer({"order": node}))
    facts = connector.fetch_order(ORDER)
    assert facts.cancelled_at == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert facts.lines[0].current_quantity == 0


@responses.activate
def test_an_order_that_no_longer_exists_is_none(connector):
    responses.post(ENDPOINT, json=gql_answer({"order": None}))
    assert connector.fetch_order(ORDER) is None


@responses.activate
def test_long_orders_are_read_past_the_first_page_of_lines_and_fulfilments(connector):
    listed = [fulfillment_node(f"7{i}", "SUCCESS", {1: 1}) for i in range(5)]
    listed[0] = fulfillment_node("70", "SUCCESS", {1: 1}, more="f-c1")
    first = order_node([line_node(1, SMALL, 20)], listed, count=7, more_lines="l-c1")
    responses.post(ENDPOINT, json=gql_answer({"order": first}))
    # The rest of the order's lines.
    responses.post(
        ENDPOINT,
        json=gql_answer({"order": {"lineItems": page([line_node(2, MEDIUM, 3)])}}),
    )
    # All seven fulfilments (two not on the first page, one of them failed), then the first
    # one's further lines and the lines of the unlisted one that shipped.
    every = [{"id": f["id"], "status": f["status"]} for f in listed] + [
        {"id": "gid://shopify/Fulfillment/75", "status": "SUCCESS"},
        {"id": "gid://shopify/Fulfillment/76", "status": "FAILURE"},
    ]
    responses.post(ENDPOINT, json=gql_answer({"order": {"fulfillments": every}}))
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "fulfillment": {
                    "fulfillmentLineItems": page(
                        [{"quantity": 2, "lineItem": {"id": "gid://shopify/LineItem/2"}}]
                    )
                }
            }
        ),
    )
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "fulfillment": {
                    "fulfillmentLineItems": page(
                        [{"quantity": 4, "lineItem": {"id": "gid://shopify/LineItem/1"}}]
                    )
                }
            }
        ),
    )

    facts = connector.fetch_order(ORDER)

    assert [(operation_of(c), sent(c)["variables"]) for c in responses.calls] == [
        ("BackorderOrder", {"id": ORDER_GID}),
        ("BackorderOrderLines", {"id": ORDER_GID, "after": "l-c1"}),
        ("BackorderOrderFulfillments", {"id": ORDER_GID}),
        ("BackorderFulfillmentLines", {"id": "gid://shopify/Fulfillment/70", "after": "f-c1"}),
        ("BackorderFulfillmentLines", {"id": "gid://shopify/Fulfillment/75", "after": None}),
    ]
    small, medium = facts.lines
    assert (small.quantity, small.fulfilled_quantity) == (20, 5 + 4)
    assert (medium.quantity, medium.fulfilled_quantity) == (3, 2)


# What Shopify answers for a field the app is not approved for (protected customer data) or
# lacks the scope for: null in `data`, an ACCESS_DENIED error naming its path.
def denied(*path) -> dict:
    return {
        "message": f"This app is not approved to use the {path[-1]} field.",
        "path": list(path),
        "extensions": {
            "code": "ACCESS_DENIED",
            "documentation": "https://shopify.dev/docs/apps/launch/protected-customer-data",
            "requiredAccess": f"Shopify approval is required before using the {path[-1]} field.",
        },
    }


@responses.activate
def test_withheld_customer_data_leaves_the_order_without_a_contact(connector):
    node = order_node([line_node(1, SMALL, 2)], email=None, customer=None)
    responses.post(
        ENDPOINT,
        json={
            **gql_answer({"order": node}),
            "errors": [denied("order", "email"), denied("order", "customer")],
        },
    )
    facts = connector.fetch_order(ORDER)
    assert facts.customer == Customer(email=None, name=None, locale="fr-CA")
    assert len(facts.lines) == 1  # the order is kept, flagged by its missing contact


@pytest.mark.parametrize(
    "errors",
    [
        [denied("order")],  # the order itself (no read_orders): never read as "no order"
        [denied("order", "email"), {"message": "Internal error", "path": ["order"]}],
        [{"message": "Field 'x' doesn't exist on type 'Order'"}],
        [denied("order", "lineItems", "nodes", 0, "variant")],
    ],
    ids=["order-denied", "other-error-too", "invalid", "non-customer-field"],
)
@responses.activate
def test_any_other_error_fails_the_read_so_it_is_retried(connector, errors):
    responses.post(ENDPOINT, json={**gql_answer({"order": None}), "errors": errors})
    with pytest.raises(ConnectorError):
        connector.fetch_order(ORDER)


@responses.activate
def test_orders_changed_since_pages_by_update_time(connector):
    second = order_node([line_node(2, MEDIUM, 1)], id="gid://shopify/Order/2")
    responses.post(
        ENDPOINT, json=gql_answer({"orders": page([order_node([line_node(1, SMALL, 3)])], "c1")})
    )
    responses.post(ENDPOINT, json=gql_answer({"orders": page([second])}))

    since = datetime(2026, 11, 20, 13, 30, 15, 987000, tzinfo=UTC)
    facts = list(connector.orders_changed_since(since))

    assert [f.order_id for f in facts] == [ORDER, "2"]
    first_call, second_call = responses.calls
    assert operation_of(first_call) == "BackorderOrdersChanged"
    assert sent(first_call)["variables"] == {
        "query": "updated_at:>'2026-11-20T13:30:15Z'",
        "after": None,
    }
    assert sent(second_call)["variables"]["after"] == "c1"
    assert "sortKey: UPDATED_AT" in sent(first_call)["query"]


@responses.activate
def test_fetch_store_reads_the_shop_and_its_primary_language(connector):
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "shop": {
                    "name": "Backorder Demo",
                    "ianaTimezone": "America/Los_Angeles",
                    "contactEmail": "hello@backorder-demo.example",
                    "billingAddress": {"countryCodeV2": "US"},
                }
            }
        ),
    )
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "shopLocales": [
                    {"locale": "fr", "primary": False},
                    {"locale": "en", "primary": True},
                ]
            }
        ),
    )
    assert connector.fetch_store() == StoreFacts(
        timezone="America/Los_Angeles",
        locale="en",
        country="US",
        name="Backorder Demo",
        contact_email="hello@backorder-demo.example",
        # Every published language, the primary first.
        published_locales=("en", "fr"),
    )
    assert [operation_of(c) for c in responses.calls] == [
        "BackorderStore",
        "BackorderStoreLocales",
    ]


@responses.activate
def test_a_shop_without_read_locales_still_gets_its_zone(connector):
    shop = {
        "name": "Backorder Demo",
        "ianaTimezone": "Europe/Berlin",
        "contactEmail": "",
        "billingAddress": {"countryCodeV2": "DE"},
    }
    responses.post(ENDPOINT, json=gql_answer({"shop": shop}))
    scope = {
        "message": "Access denied for shopLocales field. Required access: `read_locales` "
        "access scope.",
        "path": ["shopLocales"],
        "extensions": {
            "code": "ACCESS_DENIED",
            "documentation": "https://shopify.dev/api/usage/access-scopes",
            "requiredAccess": "`read_locales` access scope.",
        },
    }
    responses.post(ENDPOINT, json={"data": None, "errors": [scope]})
    assert connector.fetch_store() == StoreFacts(
        timezone="Europe/Berlin", locale=None, country="DE", name="Backorder Demo"
    )
