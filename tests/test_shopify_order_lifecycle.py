"""Shopify's order lifecycle kept in the backorder ledger, from Shopify's documented payloads.

The translator is checked on each documented order payload first (tests/fixtures/shopify,
see SOURCES.md). Then three lifecycles are replayed through the real endpoint, the real
pipeline and a fake Shopify that answers the app's GraphQL reads (fakes/shopify_graphql.py,
reached in-process through `responses`; the last test runs one lifecycle through Redis and a
real `rq worker` process against the same fake over HTTP):

- create → partial refund → cancel;
- create → partial fulfilment → fulfilment;
- an edit that removes a line.

Each runs with the events arriving as they happened (order events before stock events, as the
sandbox sends them, or stock events first) and with the newest snapshot arriving first (older
ones must be skipped), each with and without every delivery duplicated. Each asserts the line's
quantities, its timeline and the variant's badge, pushed to the store.

The store: Shopify's sample product with Small (1 on hand; the merchant sells past zero, the
backorder limit is 2) and Medium (5 on hand). The order is Shopify's orders/create sample,
which is a cancelled order with no variant on any line, adapted with explicit changes: it
stands, and it orders 3 Small (2 go on backorder) and 1 Medium.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import responses
from sqlalchemy import select

from connectors.shopify import graphql as shopify_graphql
from domain import events as ev
from fakes.shopify_graphql import FakeShopify, FakeVariant
from plugin.extensions import db
from plugin.models import (
    BackorderLine,
    BackorderStatus,
    BadgeKind,
    InboxStatus,
    Order,
    Shop,
    Variant,
    VariantBadge,
    WebhookEvent,
)
from tests import factories
from tests.shopify_webhook_helpers import (
    ENDPOINT,
    SHOP,
    TOKEN,
    fixture_bytes,
    post_webhook,
    run_worker,
)
from tests.waiting import wait_until
from webhooks.shopify import ShopifyWebhooks
from webhooks.source import StoreContext, StoredDelivery

PRODUCT_ID = "788032119674292922"
SMALL, MEDIUM = "642667041472713922", "757650484644203962"
SMALL_ITEM, MEDIUM_ITEM, LOCATION = "271878346596884015", "49148385", "24826418"
# The orders/create sample's order and lines: Aviator sunglasses becomes 3 Small, the
# Mid-century lounger 1 Medium; the orders/edited sample adds ADDED and removes SMALL_LINE.
ORDER_ID = "820982911946154508"
SMALL_LINE, LOUNGER_LINE, ADDED_LINE = (
    "487817672276298554",
    "976318377106520349",
    "78643924236718232",
)
ADMIN_URL = f"https://admin.shopify.com/store/backorder-demo/orders/{ORDER_ID}"
ORDER_TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
)


def sample(name: str) -> dict:
    return json.loads(fixture_bytes(name))


def iso(when: datetime) -> str:
    return when.isoformat()


def line(order: dict, line_id: str) -> dict:
    return next(i for i in order["line_items"] if str(i["id"]) == line_id)


# The translator on each documented payload ------------------------------------------------


def translate(topic: str, payload: bytes | dict, shop_domain: str = SHOP) -> list:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    when = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    delivery = StoredDelivery(topic, body, received_at=when, triggered_at=when)
    return ShopifyWebhooks("shopify-client-secret").to_events(
        delivery, StoreContext(shop_domain=shop_domain)
    )


@pytest.mark.parametrize("topic", ORDER_TOPICS)
def test_each_full_order_topic_gives_the_orders_snapshot_with_its_own_times(topic):
    # Shopify documents the same order body for all five topics (see SOURCES.md).
    (changed,) = translate(topic, fixture_bytes("orders-create.json"))
    order = changed.order
    sample_time = datetime(2022, 1, 1, 0, 0, tzinfo=UTC)  # 2021-12-31T19:00:00-05:00
    assert changed.order_id == order.order_id == ORDER_ID and changed.fetch is None
    # The order's own times, not the delivery's: stale snapshots are refused by them.
    assert (order.placed_at, order.updated_at, order.cancelled_at) == (sample_time,) * 3
    assert order.name == "#9999"
    assert order.customer == ev.Customer(email="jon@example.com", name="John Smith", locale="en")
    assert order.admin_url == ADMIN_URL
    assert order.lines == ()  # every line in Shopify's sample has variant_id null


def test_line_quantities_come_from_current_quantity_fulfilments_and_refunds():
    order = sample("orders-create.json")
    order["cancelled_at"] = None
    small = line(order, SMALL_LINE)
    small.update(variant_id=int(SMALL), quantity=5, current_quantity=4)
    line(order, LOUNGER_LINE)["variant_id"] = int(MEDIUM)
    # Fulfilments shaped like the documented fulfillments/update sample: only those that did
    # not fail or get cancelled shipped anything.
    order["fulfillments"] = [
        {"id": 1, "status": "success", "line_items": [{"id": int(SMALL_LINE), "quantity": 2}]},
        {"id": 2, "status": "cancelled", "line_items": [{"id": int(SMALL_LINE), "quantity": 3}]},
        {"id": 3, "status": "failure", "line_items": [{"id": int(SMALL_LINE), "quantity": 1}]},
        {"id": 4, "status": "pending", "line_items": [{"id": int(LOUNGER_LINE), "quantity": 1}]},
    ]
    # Shopify's refunds/create sample refunds one unit of every line.
    order["refunds"] = [sample("refunds-create.json")]

    (changed,) = translate("orders/updated", order)
    small_line, lounger = changed.order.lines
    assert small_line == ev.OrderLine(
        line_id=SMALL_LINE,
        variant=ev.VariantRef(variant_id=SMALL, product_id=PRODUCT_ID),
        quantity=5,
        current_quantity=4,
        fulfilled_quantity=2,
        refunded_quantity=1,
    )
    assert (lounger.fulfilled_quantity, lounger.refunded_quantity) == (1, 1)
    assert changed.order.cancelled_at is None


def test_nothing_left_to_fulfil_is_not_a_cancellation():
    # fulfillable_quantity 0 with fulfillment_status null: refunded, removed or shipped, never
    # "cancelled" (only cancelled_at says that).
    order = sample("orders-create.json")
    order["cancelled_at"] = order["cancel_reason"] = None
    small = line(order, SMALL_LINE)
    small.update(variant_id=int(SMALL), fulfillable_quantity=0, fulfillment_status=None)
    (changed,) = translate("orders/updated", order)
    assert changed.order.cancelled_at is None
    assert changed.order.lines[0].current_quantity == 1


@pytest.mark.parametrize(
    ("topic", "fixture"),
    [("refunds/create", "refunds-create.json"), ("orders/edited", "orders-edited.json")],
)
def test_refunds_and_edits_name_their_order_for_the_app_to_read(topic, fixture):
    (changed,) = translate(topic, fixture_bytes(fixture))
    received = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert changed == ev.OrderChanged(ORDER_ID, received, fetch=ev.Fetch(received))


def test_no_admin_link_without_the_shops_domain():
    (changed,) = translate("orders/create", fixture_bytes("orders-create.json"), shop_domain="")
    assert changed.order.admin_url is None


# Lifecycles through the endpoint ------------------------------------------------------------


@dataclass
class Delivery:
    topic: str
    body: dict
    at: datetime
    event_id: str


@dataclass
class Moment:
    """Something happened in the store: the order as it stands after it, and the webhooks
    Shopify sent about it, in the order Shopify sent them."""

    order: dict
    deliveries: list[Delivery] = field(default_factory=list)


@dataclass
class Scenario:
    moments: list[Moment]


T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def placed_order() -> dict:
    """Shopify's orders/create sample, adapted: a standing, paid order placed at T0 for 3 Small
    (was: 1 Aviator sunglasses, no variant) and 1 Medium (was: the lounger, no variant)."""
    order = sample("orders-create.json")
    order.update(
        cancelled_at=None,
        cancel_reason=None,
        financial_status="paid",
        created_at=iso(T0),
        processed_at=iso(T0),
        updated_at=iso(T0),
    )
    line(order, SMALL_LINE).update(
        variant_id=int(SMALL), quantity=3, current_quantity=3, fulfillable_quantity=3
    )
    line(order, LOUNGER_LINE)["variant_id"] = int(MEDIUM)
    return order


def changed(order: dict, at: datetime, **fields) -> dict:
    after = copy.deepcopy(order)
    after.update(updated_at=iso(at), **fields)
    return after


def stock(available: int, at: datetime, n: int) -> Delivery:
    """Shopify's inventory_levels/update sample for Small's item, with the figure after `at`."""
    body = {**sample("inventory_levels-update.json"), "available": available, "updated_at": iso(at)}
    return Delivery("inventory_levels/update", body, at, f"stock-{n}")


def order_event(topic: str, order: dict, at: datetime, n: int) -> Delivery:
    return Delivery(topic, order, at, f"{topic}-{n}")


def refund_of(units: dict[str, int], refund_id: int, at: datetime) -> dict:
    """Shopify's refunds/create sample, adapted: its lines cut to `units`, restocked."""
    refund = sample("refunds-create.json")
    refund.update(id=refund_id, created_at=iso(at), processed_at=iso(at), restock=True)
    items = []
    for item in refund["refund_line_items"]:
        if str(item["line_item_id"]) in units:
            item.update(quantity=units[str(item["line_item_id"])], restock_type="cancel")
            items.append(item)
    refund["refund_line_items"] = items
    return refund


def refund_then_cancel() -> Scenario:
    created = placed_order()
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    # One Small refunded before shipping, restocked: Shopify's stock goes from -2 to -1.
    first_refund = refund_of({SMALL_LINE: 1}, 9001, t1)
    refunded = changed(created, t1, financial_status="partially_refunded", refunds=[first_refund])
    line(refunded, SMALL_LINE).update(current_quantity=2, fulfillable_quantity=2)
    # Then the order is cancelled with the rest refunded and restocked: stock back to 1.
    last_refund = refund_of({SMALL_LINE: 2, LOUNGER_LINE: 1}, 9002, t2)
    cancelled = changed(
        refunded,
        t2,
        cancelled_at=iso(t2),
        cancel_reason="customer",
        financial_status="refunded",
        refunds=[first_refund, last_refund],
    )
    for item in cancelled["line_items"]:
        item.update(current_quantity=0, fulfillable_quantity=0)
    return Scenario(
        [
            Moment(
                created,
                [order_event("orders/create", created, T0, 1), stock(-2, T0, 1)],
            ),
            Moment(
                refunded,
                [
                    order_event("refunds/create", first_refund, t1, 1),
                    order_event("orders/updated", refunded, t1, 1),
                    stock(-1, t1, 2),
                ],
            ),
            Moment(
                cancelled,
                [
                    order_event("orders/cancelled", cancelled, t2, 1),
                    order_event("orders/updated", cancelled, t2, 2),
                    order_event("refunds/create", last_refund, t2, 2),
                    stock(1, t2, 3),
                ],
            ),
        ]
    )


def fulfilment(fulfillment_id: int, units: dict[str, int], at: datetime) -> dict:
    """A fulfilment as the order resource lists it: the fields of the documented
    fulfillments/create sample the app reads (status, line items with their quantities)."""
    return {
        "id": fulfillment_id,
        "order_id": int(ORDER_ID),
        "status": "success",
        "created_at": iso(at),
        "updated_at": iso(at),
        "name": f"#9999.{fulfillment_id % 10}",
        "line_items": [{"id": int(i), "quantity": q} for i, q in units.items()],
        "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
    }


def partial_then_full_fulfilment() -> Scenario:
    created = placed_order()
    t1, t2, t3 = (T0 + timedelta(minutes=m) for m in (1, 2, 3))
    first = fulfilment(7001, {SMALL_LINE: 2}, t2)
    partial = changed(created, t2, fulfillment_status="partial", fulfillments=[first])
    line(partial, SMALL_LINE).update(fulfillable_quantity=1, fulfillment_status="partial")
    last = fulfilment(7002, {SMALL_LINE: 1, LOUNGER_LINE: 1}, t3)
    shipped = changed(partial, t3, fulfillment_status="fulfilled", fulfillments=[first, last])
    for item in shipped["line_items"]:
        item.update(fulfillable_quantity=0, fulfillment_status="fulfilled")
    return Scenario(
        [
            Moment(created, [order_event("orders/create", created, T0, 1), stock(-2, T0, 1)]),
            # Two units come in: Shopify's available goes from -2 to 0.
            Moment(created, [stock(0, t1, 2)]),
            Moment(
                partial,
                [
                    order_event("orders/partially_fulfilled", partial, t2, 1),
                    order_event("orders/updated", partial, t2, 1),
                ],
            ),
            Moment(
                shipped,
                [
                    order_event("orders/fulfilled", shipped, t3, 1),
                    order_event("orders/updated", shipped, t3, 2),
                ],
            ),
        ]
    )


def edit_removing_a_line() -> Scenario:
    created = placed_order()
    t1 = T0 + timedelta(minutes=1)
    # Shopify's orders/edited sample, adapted: it removes the whole Small line (3 units,
    # restocked: stock back from -2 to 1) and adds its line as one more Medium.
    edit = sample("orders-edited.json")
    edit["order_edit"].update(created_at=iso(t1), committed_at=iso(t1))
    edit["order_edit"]["line_items"] = {
        "additions": [{"id": int(ADDED_LINE), "delta": 1}],
        "removals": [{"id": int(SMALL_LINE), "delta": 3}],
    }
    edited = changed(created, t1)
    line(edited, SMALL_LINE).update(current_quantity=0, fulfillable_quantity=0)
    added = copy.deepcopy(line(edited, LOUNGER_LINE))
    added.update(id=int(ADDED_LINE), admin_graphql_api_id=f"gid://shopify/LineItem/{ADDED_LINE}")
    edited["line_items"].append(added)
    return Scenario(
        [
            Moment(created, [order_event("orders/create", created, T0, 1), stock(-2, T0, 1)]),
            Moment(
                edited,
                [
                    order_event("orders/edited", edit, t1, 1),
                    order_event("orders/updated", edited, t1, 1),
                    stock(1, t1, 2),
                ],
            ),
        ]
    )


SCENARIOS = {
    "refund-then-cancel": refund_then_cancel,
    "partial-then-full-fulfilment": partial_then_full_fulfilment,
    "edit-removes-a-line": edit_removing_a_line,
}
OUT, BACK, IN = BadgeKind.OUT_OF_STOCK, BadgeKind.BACKORDER, BadgeKind.IN_STOCK


@dataclass(frozen=True)
class Expected:
    # Small's backorder line: (backordered, open, allocated, fulfilled, cancelled, status), or
    # None when nothing was ever short.
    line: tuple | None
    # Its timeline: (kind, units, cause).
    steps: list[tuple[str, int, str]]
    # Small's badge after each moment (as events happened), or only at the end.
    badges: list[BadgeKind]
    # The selling policies the app wrote for Small, in order.
    policies: list[str]


CANCELLED = BackorderStatus.CANCELLED
EXPECTED = {
    ("refund-then-cancel", "order first"): Expected(
        (2, 0, 0, 0, 2, CANCELLED),
        [
            ("opened", 2, "orders/create"),
            ("cancelled", 1, "refunds/create"),
            ("cancelled", 1, "orders/cancelled"),
        ],
        [OUT, BACK, IN],
        ["DENY", "CONTINUE"],
    ),
    ("refund-then-cancel", "stock first"): Expected(
        (2, 0, 0, 0, 2, CANCELLED),
        [
            ("opened", 2, "orders/create"),
            # The restocked unit shows in the stock before the refund does: reserved for the
            # line until the refund says it is off the order.
            ("allocated", 1, "inventory_levels/update"),
            ("cancelled", 1, "refunds/create"),
            ("allocated", 1, "inventory_levels/update"),
            ("cancelled", 1, "orders/cancelled"),
        ],
        [OUT, BACK, IN],
        ["DENY", "CONTINUE"],
    ),
    ("refund-then-cancel", "newest first"): Expected(None, [], [IN], []),
    ("partial-then-full-fulfilment", "order first"): Expected(
        (2, 0, 0, 2, 0, BackorderStatus.FULFILLED),
        [
            ("opened", 2, "orders/create"),
            ("allocated", 2, "inventory_levels/update"),
            # Two shipped: one was on hand, one backordered; then the last backordered one.
            ("fulfilled", 1, "orders/partially_fulfilled"),
            ("fulfilled", 1, "orders/fulfilled"),
        ],
        [OUT, OUT, BACK, BACK],
        ["DENY", "CONTINUE"],
    ),
    ("partial-then-full-fulfilment", "newest first"): Expected(None, [], [BACK], []),
    ("edit-removes-a-line", "order first"): Expected(
        (2, 0, 0, 0, 2, CANCELLED),
        [("opened", 2, "orders/create"), ("cancelled", 2, "orders/edited")],
        [OUT, IN],
        ["DENY", "CONTINUE"],
    ),
    ("edit-removes-a-line", "stock first"): Expected(
        (2, 0, 0, 0, 2, CANCELLED),
        [
            ("opened", 2, "orders/create"),
            ("allocated", 2, "inventory_levels/update"),
            ("cancelled", 2, "orders/edited"),
        ],
        [OUT, IN],
        ["DENY", "CONTINUE"],
    ),
    ("edit-removes-a-line", "newest first"): Expected(None, [], [IN], []),
}
# No stock event comes between the fulfilment's order events: the same as order first.
EXPECTED["partial-then-full-fulfilment", "stock first"] = EXPECTED[
    "partial-then-full-fulfilment", "order first"
]


@pytest.fixture(autouse=True)
def fresh_buckets():
    shopify_graphql._BUCKETS.clear()
    yield
    shopify_graphql._BUCKETS.clear()


def fake_store() -> FakeShopify:
    fake = FakeShopify(token=TOKEN, maximum=1_000_000, restore_rate=1_000_000)
    fake.add_variant(
        FakeVariant(
            SMALL, SMALL_ITEM, PRODUCT_ID, "Small", policy="CONTINUE", levels={LOCATION: 1}
        ),
        "Example T-Shirt",
    )
    fake.add_variant(FakeVariant(MEDIUM, MEDIUM_ITEM, PRODUCT_ID, "Medium", levels={LOCATION: 5}))
    return fake


def mirror_the_store() -> None:
    """The shop with the store already mirrored: Small has 1 on hand, the merchant sells it
    past zero up to 2 backordered units; Medium has 5."""
    shop = factories.shopify_shop()
    factories.product(
        shop,
        PRODUCT_ID,
        "Example T-Shirt",
        variants=[
            {
                "platform_id": SMALL,
                "inventory_item_id": SMALL_ITEM,
                "title": "Small",
                "sells_past_zero": True,
                "backorder_limit": 2,
                "levels": {LOCATION: 1},
            },
            {
                "platform_id": MEDIUM,
                "inventory_item_id": MEDIUM_ITEM,
                "title": "Medium",
                "levels": {LOCATION: 5},
            },
        ],
    )


@pytest.fixture
def fake(app):
    """The fake Shopify answering the app's GraphQL in this process, through `responses`."""
    store = fake_store()

    def answer(request):
        status, body = store.handle(urlsplit(request.url).path, dict(request.headers), request.body)
        return status, {"Content-Type": "application/json"}, json.dumps(body)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, ENDPOINT, callback=answer)
        yield store


def deliver(client, deliveries: list[Delivery], duplicates: bool) -> None:
    for d in deliveries:
        first = post_webhook(client, d.topic, d.body, event_id=d.event_id, triggered_at=d.at)
        assert first.status_code == 200, first.get_data(as_text=True)
        if duplicates:
            again = post_webhook(client, d.topic, d.body, event_id=d.event_id, triggered_at=d.at)
            assert again.status_code == 200 and again.json["duplicate"] is True


def small_badge() -> BadgeKind:
    db.session.expire_all()
    variant = db.session.scalars(select(Variant).where(Variant.platform_id == SMALL)).one()
    return db.session.get(VariantBadge, variant.id).state


def replay(client, fake: FakeShopify, scenario: Scenario, arrival: str, duplicates: bool):
    """Play the scenario's moments; returns Small's badge after each (or only at the end when
    the newest arrive first, after everything has happened in the store)."""
    badges = []
    if arrival == "newest first":
        fake.put_order(scenario.moments[-1].order)
        everything = [d for m in scenario.moments for d in m.deliveries]
        deliver(client, everything[::-1], duplicates)
        return [small_badge()]
    for moment in scenario.moments:
        fake.put_order(moment.order)
        deliveries = moment.deliveries
        if arrival == "stock first":
            deliveries = sorted(deliveries, key=lambda d: d.topic != "inventory_levels/update")
        deliver(client, deliveries, duplicates)
        badges.append(small_badge())
    return badges


def ledger_of_small() -> tuple[tuple | None, list[tuple[str, int, str]]]:
    db.session.expire_all()
    line = db.session.scalars(select(BackorderLine)).one_or_none()
    if line is None:
        return None, []
    assert line.variant.platform_id == SMALL  # nothing of Medium (in stock) is ever short
    quantities = (
        line.quantity,
        line.open_quantity,
        line.allocated_quantity,
        line.fulfilled_quantity,
        line.cancelled_quantity,
        line.status,
    )
    return quantities, [(s.kind, s.quantity, s.cause) for s in line.steps]


@pytest.mark.parametrize("duplicates", [False, True], ids=["once", "duplicated"])
@pytest.mark.parametrize("arrival", ["order first", "stock first", "newest first"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_lifecycle_through_the_endpoint(app, client, fake, name, arrival, duplicates):
    mirror_the_store()
    scenario = SCENARIOS[name]()
    expected = EXPECTED[name, arrival]

    badges = replay(client, fake, scenario, arrival, duplicates)

    quantities, steps = ledger_of_small()
    assert quantities == expected.line
    assert steps == expected.steps
    assert badges == expected.badges
    # What the store shows is the last badge decided, with the policy the app put back.
    assert fake.badge(SMALL)["state"] == expected.badges[-1].value
    written = [
        v["inventoryPolicy"]
        for call in fake.calls("BadgeInventoryPolicy")
        for v in call["variables"]["variants"]
    ]
    assert written == expected.policies
    assert fake.variants[SMALL].policy == "CONTINUE"

    # The order as Shopify last described it, whichever snapshot arrived last.
    final = scenario.moments[-1].order
    order = db.session.scalars(select(Order)).one()
    assert order.source_updated_at == datetime.fromisoformat(final["updated_at"])
    assert order.placed_at == T0
    assert (order.customer_email, order.customer_name, order.customer_locale) == (
        "jon@example.com",
        "John Smith",
        "en",
    )
    assert (order.cancelled_at is not None) == (final["cancelled_at"] is not None)
    current = {ln.platform_id: ln.current_quantity for ln in order.lines}
    assert current == {
        str(i["id"]): int(i["current_quantity"]) if final["cancelled_at"] is None else 0
        for i in final["line_items"]
        if i["variant_id"] is not None
    }
    events = db.session.scalars(select(WebhookEvent)).all()
    assert {e.status for e in events} == {InboxStatus.PROCESSED}
    # The inbox keys a Shopify delivery by its signed body: orders/cancelled and
    # orders/updated about one change carry the same order, so they are stored once.
    posted = [d for m in scenario.moments for d in m.deliveries]
    assert len(events) == len({json.dumps(d.body) for d in posted})
    assert sum(e.deliveries for e in events) == len(posted) * (2 if duplicates else 1)
    assert all(e.attempts == 1 for e in events)


def test_an_order_read_from_the_store_links_to_the_admin(app, client, fake):
    mirror_the_store()
    scenario = refund_then_cancel()
    replay(client, fake, Scenario(scenario.moments[:2]), "order first", duplicates=False)
    order = db.session.scalars(select(Order)).one()
    # The refund made the app read the order by GraphQL, which knows the shop.
    assert order.admin_url == ADMIN_URL
    assert [c["operation"] for c in fake.calls() if c["operation"].startswith("Backorder")] == [
        "BackorderOrder"
    ]
    assert fake.calls("BackorderOrder")[0]["variables"] == {"id": f"gid://shopify/Order/{ORDER_ID}"}


def test_an_older_snapshot_is_skipped_and_says_so(app, client, fake):
    mirror_the_store()
    scenario = refund_then_cancel()
    created, refunded = scenario.moments[0].order, scenario.moments[1].order
    fake.put_order(refunded)
    deliver(client, [order_event("orders/updated", refunded, T0 + timedelta(minutes=1), 1)], False)
    deliver(client, [order_event("orders/create", created, T0, 1)], False)
    late = db.session.scalars(
        select(WebhookEvent).where(WebhookEvent.topic == "orders/create")
    ).one()
    assert late.status == InboxStatus.PROCESSED
    assert late.attempt_log[-1].error == f"older snapshot of order {ORDER_ID} skipped"
    order = db.session.scalars(select(Order)).one()
    assert {ln.platform_id: ln.current_quantity for ln in order.lines}[SMALL_LINE] == 2


def test_reconciliation_heals_a_missed_cancellation(app, client, fake):
    mirror_the_store()
    created, _refunded, cancelled = (m.order for m in refund_then_cancel().moments)
    fake.put_order(created)
    deliver(client, [order_event("orders/create", created, T0, 1), stock(-2, T0, 1)], False)
    assert ledger_of_small()[0] == (2, 2, 0, 0, 0, BackorderStatus.OPEN)

    # The order is cancelled and its units restocked; none of those webhooks arrives.
    fake.put_order(cancelled)
    fake.variants[SMALL].levels = {LOCATION: 1}
    result = app.test_cli_runner().invoke(args=["reconcile", "--shop", SHOP])
    assert result.exit_code == 0, result.output

    quantities, steps = ledger_of_small()
    assert quantities == (2, 0, 0, 0, 2, CANCELLED)
    assert steps == [("opened", 2, "orders/create"), ("cancelled", 2, "reconcile")]
    assert small_badge() == IN and fake.badge(SMALL)["state"] == "in_stock"
    # The store's own facts came with it, and the order read from the store links to it.
    shop = db.session.scalars(select(Shop)).one()
    assert (shop.timezone, shop.locale, shop.country) == ("America/Los_Angeles", "en", "US")
    assert db.session.scalars(select(Order)).one().admin_url == ADMIN_URL


def test_a_refund_seen_before_the_order_keeps_the_rest_owed(app, client, fake):
    """The first snapshot the app sees already has a unit refunded: the units still owed are
    counted all the same (see tests/test_bigcommerce_order_lifecycle.py's refund-before-create)."""
    mirror_the_store()
    created, refunded = (m.order for m in refund_then_cancel().moments[:2])
    fake.put_order(refunded)
    t1 = T0 + timedelta(minutes=1)
    refund = refund_of({SMALL_LINE: 1}, 9001, t1)
    # The refund (read from the store) comes first; the order's own create is late.
    deliver(
        client,
        [
            order_event("refunds/create", refund, t1, 1),
            stock(-1, t1, 2),
            order_event("orders/create", created, T0, 1),
            stock(-2, T0, 1),
        ],
        duplicates=False,
    )
    # 3 ordered, 1 refunded, 1 was on hand: one unit is still owed to the customer.
    quantities, _steps = ledger_of_small()
    assert quantities[1:3] == (1, 0)  # open, allocated
    assert small_badge() == BACK


# The same through Redis and a real worker ---------------------------------------------------


@pytest.mark.services
def test_refund_then_cancel_through_redis_and_a_worker(queued_app, database_url, redis_url):
    """Each moment's webhooks, every one delivered twice, go through the endpoint into Redis; a
    real `rq worker --burst` process handles them against the fake Shopify over HTTP."""
    store = fake_store()
    api_base = store.start()
    try:
        mirror_the_store()
        client = queued_app.test_client()
        scenario = refund_then_cancel()
        badges = []
        for moment in scenario.moments:
            store.put_order(moment.order)
            deliver(client, moment.deliveries, duplicates=True)
            wait_until(
                lambda: all(e.status == InboxStatus.PROCESSED for e in inbox()),
                before_each=lambda: run_worker(database_url, redis_url, api_base),
                timeout=90,
                interval=0.2,
                what="a burst worker to process the moment's webhooks",
            )
            badges.append(small_badge())
        wait_until(
            lambda: store.badge(SMALL).get("state") == "in_stock",
            before_each=lambda: run_worker(database_url, redis_url, api_base),
            timeout=60,
            interval=0.6,
            what="the last badge to be pushed",
        )
    finally:
        store.stop()

    expected = EXPECTED["refund-then-cancel", "order first"]
    assert badges == expected.badges
    assert ledger_of_small() == (expected.line, expected.steps)
    assert [c["variables"] for c in store.calls("BackorderOrder")] == [
        {"id": f"gid://shopify/Order/{ORDER_ID}"}
    ] * 2
    events = inbox()
    posted = [d for m in scenario.moments for d in m.deliveries]
    assert len(events) == len({json.dumps(d.body) for d in posted})  # stored once per body
    assert sum(e.deliveries for e in events) == 2 * len(posted)
    assert all(e.attempts == 1 for e in events)
    order = db.session.scalars(select(Order)).one()
    assert order.admin_url == ADMIN_URL and order.cancelled_at is not None


def inbox() -> list[WebhookEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))
