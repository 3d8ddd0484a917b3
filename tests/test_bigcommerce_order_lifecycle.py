"""BigCommerce's order lifecycle, kept in the backorder ledger.

The documented payloads of every order scope (`tests/fixtures/bigcommerce/SOURCES.md`) go
through the real endpoint; each is completed from V2 orders shaped as BigCommerce documents them,
served by a stateful stand-in of the store API behind `responses` (and, for the worker test, on
a loopback port). The store changes first and its webhooks follow, in order or late, once or
twice, as BigCommerce delivers them: each read answers the order as it is at that moment.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
import time_machine
from sqlalchemy import select

from connectors.bigcommerce import connector as bc_connector
from connectors.bigcommerce.registration import WEBHOOK_SCOPES
from domain import events as ev
from domain.badges import BadgeKind
from fakes.bigcommerce import FakeBigCommerce
from fakes.bigcommerce import FakeStore as FakeApi
from plugin.extensions import db, shared_cache
from plugin.models import (
    BackorderLine,
    BadgeTransition,
    Order,
    Variant,
    VariantBadge,
    WebhookAttempt,
    WebhookEvent,
    utcnow,
)
from plugin.services.ledger import units_owed
from plugin.services.reconcile import reconcile_shop
from tests import factories
from tests.bc_callback_helpers import FakeStore
from tests.bigcommerce_support import (
    API,
    STORE,
    TOKEN,
    documented_payload,
    drain,
    rfc2822,
    signed,
    status_change,
    store_connector,
    store_information,
    v2_order,
    v2_order_product,
    webhook_payload,
)

MANIFEST = json.loads((Path(__file__).resolve().parent.parent / "app-manifest.json").read_text())
# 23:30 UTC on Wednesday 23 December 2026: already Thursday the 24th in Berlin.
NEAR_MIDNIGHT_UTC = datetime(2026, 12, 23, 23, 30, tzinfo=UTC)


@pytest.fixture
def store(app):
    """The store's API as a stateful stand-in behind `responses`: hooks and scripts, catalogue,
    stock, metafields, V2 orders and store information."""
    shared_cache.cache.clear()
    bc_connector._clients.clear()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeStore(STORE).install(rsps)
        fake.mock = rsps  # its `calls`, with their queries
        yield fake
    shared_cache.cache.clear()
    bc_connector._clients.clear()


def backorderable_tee(api: FakeApi, limit: int):
    """Variant 509 of product 206, sold out and taking pre-orders, with a backorder limit."""
    shop = factories.bigcommerce_store()
    (variant,) = factories.product(
        shop,
        "206",
        "Tee",
        [
            {
                "platform_id": "509",
                "sku": "SKU-509",
                "sells_past_zero": True,
                "backorder_limit": limit,
                "levels": {"1": 0},
            }
        ],
    ).variants
    api.add_product(206, "Tee", [509])
    api.products[206]["availability"] = "preorder"
    return shop, variant


def deliver(client, payload: dict, msg_id: str) -> dict:
    body, headers = signed(payload, msg_id=msg_id)
    response = client.post("/webhooks/bigcommerce", data=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def deliver_with_duplicates(client, payloads: list[dict], prefix: str) -> None:
    """Each delivery and then its resend (same webhook id): the resend is a duplicate."""
    for number, payload in enumerate(payloads):
        msg_id = f"msg_{prefix}_{number}"
        assert deliver(client, payload, msg_id)["duplicate"] is False
        assert deliver(client, payload, msg_id)["duplicate"] is True
        if payload["scope"] == "store/order/created":
            # The same creation under another webhook id is one event by its payload hash.
            assert deliver(client, payload, f"{msg_id}_again")["duplicate"] is True


def the_line(order_id: str) -> BackorderLine | None:
    db.session.expire_all()
    return db.session.scalars(
        select(BackorderLine)
        .join(BackorderLine.order_line)
        .join(Order)
        .where(Order.platform_id == order_id)
    ).one_or_none()


def quantities(line: BackorderLine) -> tuple:
    return (
        line.quantity,
        line.open_quantity,
        line.allocated_quantity,
        line.fulfilled_quantity,
        line.cancelled_quantity,
        line.status.value,
    )


def timeline(line: BackorderLine) -> list[tuple[str, int, str]]:
    return [(step.kind, step.quantity, step.cause) for step in line.steps]


def badge_states(variant: Variant) -> list[str]:
    transitions = db.session.scalars(
        select(BadgeTransition)
        .where(BadgeTransition.variant_id == variant.id)
        .order_by(BadgeTransition.id)
    )
    return [t.to_state.value for t in transitions]


def listed_orders(store: FakeStore) -> list[dict]:
    """The queries of every GET /v2/orders the app sent."""
    return [
        dict(parse_qsl(urlsplit(call.request.url).query))
        for call in store.mock.calls
        if urlsplit(call.request.url).path.endswith("/v2/orders")
    ]


def run_plan(client, api: FakeApi, plan: list[tuple[str, object]]) -> None:
    """("order", V2 order and products): the store changes; ("level", n): its stock;
    ("hooks", [...]): BigCommerce delivers, each twice."""
    for number, (kind, value) in enumerate(plan):
        if kind == "order":
            order, products = value
            api.put_order(order, products)
        elif kind == "level":
            api.set_level(509, value)
        else:
            deliver_with_duplicates(client, value, prefix=str(number))


# -- create -> partial refund -> cancel -------------------------------------------------------

T0 = utcnow().replace(microsecond=0) - timedelta(hours=2)


def order_250(status_id: int, minutes: int, *, refunded: int = 0) -> tuple[dict, list[dict]]:
    products = [v2_order_product(31, 250, 206, 509, 2, refunded=refunded)]
    order = v2_order(
        250,
        status_id,
        created=T0,
        modified=T0 + timedelta(minutes=minutes),
        products=products,
    )
    return order, products


CREATED = [documented_payload("store-order-created"), status_change(0, 11)]
PARTLY_REFUNDED = [
    documented_payload("store-order-refund-created"),
    status_change(11, 14),
    documented_payload("store-order-updated"),
]
CANCELLED = [status_change(14, 5), documented_payload("store-order-updated")]
REFUND, STATUS = "store/order/refund/created", "store/order/statusUpdated"


@pytest.mark.parametrize(
    ("plan", "line", "steps", "badges"),
    [
        pytest.param(
            [
                ("order", order_250(11, 0)),
                ("hooks", CREATED),
                ("order", order_250(14, 5, refunded=1)),
                ("hooks", PARTLY_REFUNDED),
                ("order", order_250(5, 10, refunded=1)),
                ("hooks", CANCELLED),
            ],
            (2, 0, 0, 0, 2, "cancelled"),
            [
                ("opened", 2, "store/order/created"),
                ("cancelled", 1, REFUND),
                ("cancelled", 1, STATUS),
            ],
            # Two owed reach the limit of 2; the refund frees one.
            ["out_of_stock", "backorder"],
            id="in-order",
        ),
        pytest.param(
            [
                ("order", order_250(11, 0)),
                ("order", order_250(14, 5, refunded=1)),
                # The refund's webhooks come before the order's own: the first read already
                # shows one unit refunded. Both units were short when ordered (stock 0), so
                # the line opens with 2 and the refunded one is cancelled at once.
                ("hooks", PARTLY_REFUNDED),
                ("hooks", CREATED),
                ("order", order_250(5, 10, refunded=1)),
                ("hooks", CANCELLED),
            ],
            (2, 0, 0, 0, 2, "cancelled"),
            [("opened", 2, REFUND), ("cancelled", 1, REFUND), ("cancelled", 1, STATUS)],
            ["backorder"],
            id="refund-before-create",
        ),
    ],
)
def test_created_partly_refunded_then_cancelled(client, store, plan, line, steps, badges):
    api = store.catalogue
    shop, variant = backorderable_tee(api, limit=2)

    run_plan(client, api, plan)

    backorder = the_line("250")
    assert quantities(backorder) == line
    assert timeline(backorder) == steps
    order = backorder.order
    assert order.cancelled_at == T0 + timedelta(minutes=10)  # the order's date_modified
    assert (order.customer_email, order.customer_name, order.customer_locale) == (
        "janedoe@email.com",
        "Jane Doe",
        "en",
    )
    assert order.admin_url == f"https://store-{STORE}.mybigcommerce.com/manage/orders/250"
    assert [
        (li.ordered_quantity, li.current_quantity, li.refunded_quantity) for li in order.lines
    ] == [(2, 0, 1)]
    assert units_owed(db.session, variant) == 0
    assert badge_states(variant) == badges
    # The badge shown on the storefront is the one decided last.
    assert api.badge("variants", 509)["state"] == "backorder"
    # Every delivery was stored once (the creation once in all), and each one read the order.
    events = db.session.scalars(select(WebhookEvent)).all()
    assert len(events) == 7
    assert all(e.deliveries >= 2 for e in events)
    assert store.requests.count(("GET", "/v2/orders/250", None)) == 7


# -- create -> partial shipment -> shipment ---------------------------------------------------


def order_251(status_id: int, minutes: int, *, shipped: int = 0) -> tuple[dict, list[dict]]:
    products = [v2_order_product(41, 251, 206, 509, 3, shipped=shipped)]
    order = v2_order(
        251,
        status_id,
        created=T0,
        modified=T0 + timedelta(minutes=minutes),
        products=products,
    )
    return order, products


CREATED_251 = [webhook_payload("store-order-created", id=251), status_change(0, 11, 251)]
UPDATED_251 = webhook_payload("store-order-updated", id=251)
PARTLY_SHIPPED = [
    documented_payload("store-shipment-created"),  # shipment 12 of order 251
    status_change(11, 3, 251),
    UPDATED_251,
]
SHIPPED = [
    webhook_payload("store-shipment-created", id=13, orderId=251),
    status_change(3, 2, 251),
    UPDATED_251,
]


def stock_event() -> list[dict]:
    return [webhook_payload("store-sku-inventory-updated")]


SHIPMENT, STOCK = "store/shipment/created", "store/sku/inventory/updated"


@pytest.mark.parametrize(
    ("plan", "steps"),
    [
        pytest.param(
            [
                ("order", order_251(11, 0)),
                ("hooks", CREATED_251),
                # Two units come in (stock -3 -> -1): the order's oldest units are covered.
                ("level", -1),
                ("hooks", stock_event()),
                ("order", order_251(3, 20, shipped=2)),
                ("hooks", PARTLY_SHIPPED),
                ("level", 0),
                ("hooks", stock_event()),
                ("order", order_251(2, 40, shipped=3)),
                ("hooks", SHIPPED),
            ],
            [
                ("opened", 3, "store/order/created"),
                ("allocated", 2, STOCK),
                ("fulfilled", 2, SHIPMENT),
                ("allocated", 1, STOCK),
                ("fulfilled", 1, SHIPMENT),
            ],
            id="in-order",
        ),
        pytest.param(
            [
                ("order", order_251(11, 0)),
                ("hooks", CREATED_251),
                ("level", -1),
                ("order", order_251(3, 20, shipped=2)),
                # The shipment's webhooks come before the stock event that made it possible.
                ("hooks", PARTLY_SHIPPED),
                ("hooks", stock_event()),
                ("level", 0),
                ("order", order_251(2, 40, shipped=3)),
                ("hooks", SHIPPED),
                ("hooks", stock_event()),
            ],
            [
                ("opened", 3, "store/order/created"),
                ("fulfilled", 2, SHIPMENT),
                ("fulfilled", 1, SHIPMENT),
            ],
            id="shipment-before-stock",
        ),
    ],
)
def test_created_partly_shipped_then_shipped(client, store, plan, steps):
    api = store.catalogue
    shop, variant = backorderable_tee(api, limit=3)

    run_plan(client, api, plan)

    backorder = the_line("251")
    assert quantities(backorder) == (3, 0, 0, 3, 0, "fulfilled")
    assert timeline(backorder) == steps
    (line,) = backorder.order.lines
    assert (line.ordered_quantity, line.current_quantity, line.fulfilled_quantity) == (3, 3, 3)
    assert backorder.order.cancelled_at is None
    assert units_owed(db.session, variant) == 0
    # Three owed reach the limit of 3 until the first shipment.
    assert badge_states(variant) == ["out_of_stock", "backorder"]
    assert api.badge("variants", 509)["state"] == "backorder"
    # Shipments name their order as `orderId`: every one was read as order 251.
    db.session.expire_all()
    shipments = db.session.scalars(
        select(WebhookEvent).where(WebhookEvent.topic == "store/shipment/created")
    ).all()
    assert [e.order_id for e in shipments] == ["251", "251"]


def test_a_read_older_than_the_snapshot_applied_is_refused(client, store):
    """A slow worker's read of the partly refunded order, applied after the cancellation."""
    api = store.catalogue
    backorderable_tee(api, limit=2)
    run_plan(
        client,
        api,
        [
            ("order", order_250(11, 0)),
            ("hooks", CREATED),
            ("order", order_250(5, 10, refunded=1)),
            ("hooks", CANCELLED),
            ("order", order_250(14, 5, refunded=1)),
            ("hooks", PARTLY_REFUNDED[:1]),
        ],
    )
    backorder = the_line("250")
    assert quantities(backorder) == (2, 0, 0, 0, 2, "cancelled")
    assert timeline(backorder) == [("opened", 2, "store/order/created"), ("cancelled", 2, STATUS)]
    refund = db.session.scalars(select(WebhookEvent).where(WebhookEvent.topic == REFUND)).one()
    notes = db.session.scalars(
        select(WebhookAttempt.error).where(WebhookAttempt.event_id == refund.id)
    ).all()
    assert notes == ["older snapshot of order 250 skipped"]


def test_an_incomplete_order_owes_nothing_until_its_payment_goes_through(client, store):
    """`store/order/created` also fires for orders whose payment failed (status Incomplete)."""
    api = store.catalogue
    _shop, variant = backorderable_tee(api, limit=5)
    run_plan(
        client,
        api,
        [("order", order_250(0, 0)), ("hooks", CREATED[:1])],
    )
    assert the_line("250") is None
    assert units_owed(db.session, variant) == 0
    run_plan(client, api, [("order", order_250(11, 3)), ("hooks", [status_change(0, 11)])])
    assert quantities(the_line("250")) == (2, 2, 0, 0, 0, "open")


# -- the store's own facts and a missed webhook, healed by reconciliation -------------------


def test_a_berlin_store_read_from_v2_store_and_a_missed_cancellation_healed(client, store):
    api = store.catalogue
    api.store = store_information(timezone="Europe/Berlin", country_code="DE", language="de")
    shop, variant = backorderable_tee(api, limit=5)
    shop.settings.business_days = True
    shop.settings.default_lead_days = 1
    db.session.commit()
    placed = NEAR_MIDNIGHT_UTC - timedelta(hours=1)
    products = [v2_order_product(31, 250, 206, 509, 2)]
    api.put_order(v2_order(250, 11, created=placed, modified=placed, products=products), products)
    api.set_level(509, -2)  # the store took the order: two units owed

    with time_machine.travel(NEAR_MIDNIGHT_UTC, tick=False):
        # Its created webhook was lost too: the first reconciliation finds the order.
        reconcile_shop(db.session, shop)
        db.session.commit()
    assert (shop.timezone, shop.country, shop.locale) == ("Europe/Berlin", "DE", "de")
    backorder = the_line("250")
    assert quantities(backorder) == (2, 2, 0, 0, 0, "open")
    badge = db.session.get(VariantBadge, variant.id)
    # Thursday the 24th in Berlin; the 25th and 26th are German holidays, then the weekend.
    assert (badge.state, badge.eta) == (BadgeKind.BACKORDER, date(2026, 12, 28))

    cancelled_at = NEAR_MIDNIGHT_UTC + timedelta(hours=8)
    api.put_order(
        v2_order(250, 5, created=placed, modified=cancelled_at, products=products), products
    )
    api.set_level(509, 0)  # cancelling put the two units back
    with time_machine.travel(cancelled_at + timedelta(minutes=10), tick=False):
        # The cancellation's webhooks never came: the next run reads what changed since.
        reconcile_shop(db.session, shop)
        db.session.commit()
    backorder = the_line("250")
    assert quantities(backorder) == (2, 0, 0, 0, 2, "cancelled")
    assert timeline(backorder) == [("opened", 2, "reconcile"), ("cancelled", 2, "reconcile")]
    assert backorder.order.cancelled_at == cancelled_at
    assert listed_orders(store)[-1] == {
        "min_date_modified": rfc2822(NEAR_MIDNIGHT_UTC - timedelta(minutes=5, seconds=1)),
        "sort": "date_modified:asc",
        "limit": "250",
        "page": "1",
    }


# -- through Redis and a real worker ----------------------------------------------------------


def test_an_order_s_life_through_redis_and_a_real_worker(queued_app, database_url, redis_url):
    api = FakeApi(STORE, TOKEN)
    shop, variant = backorderable_tee(api, limit=2)
    client = queued_app.test_client()
    with FakeBigCommerce(api) as fake:
        for state, hooks in (
            (order_250(11, 0), CREATED),
            (order_250(14, 5, refunded=1), PARTLY_REFUNDED),
            (order_250(5, 10, refunded=1), CANCELLED),
        ):
            api.put_order(*state)
            calls_before = api.total_calls()
            deliver_with_duplicates(client, hooks, prefix=hooks[0]["scope"].replace("/", "_"))
            assert api.total_calls() == calls_before  # nothing is read before the 200
            drain(database_url, redis_url, fake.url)
            if hooks is CREATED:
                assert api.badge("variants", 509)["state"] == "out_of_stock"

    backorder = the_line("250")
    assert quantities(backorder) == (2, 0, 0, 0, 2, "cancelled")
    assert timeline(backorder) == [
        ("opened", 2, "store/order/created"),
        ("cancelled", 1, REFUND),
        ("cancelled", 1, STATUS),
    ]
    assert api.badge("variants", 509)["state"] == "backorder"
    assert badge_states(variant) == ["out_of_stock", "backorder"]
    # Two reads per order event stored: the order and its products.
    assert api.calls["GET /v2/orders/250"] == 7
    assert api.calls["GET /v2/orders/250/products"] == 7


# -- the pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "order_id", "event_id"),
    [
        (documented_payload("store-order-created"), "250", "hash"),
        (documented_payload("store-order-updated"), "250", "webhook-id"),
        (documented_payload("store-order-statusUpdated"), "250", "webhook-id"),
        (documented_payload("store-order-refund-created"), "250", "webhook-id"),
        (documented_payload("store-shipment-created"), "251", "webhook-id"),
    ],
    ids=lambda value: value["scope"] if isinstance(value, dict) else None,
)
def test_every_order_scope_is_an_order_to_read(payload, order_id, event_id):
    from webhooks.bigcommerce import BigCommerceWebhooks, event_id_for
    from webhooks.source import StoreContext, StoredDelivery

    received_at = datetime.now(UTC)
    delivery = StoredDelivery(
        topic=payload["scope"], body=json.dumps(payload).encode(), received_at=received_at
    )
    with responses.RequestsMock():  # any HTTP request would fail the test
        events = BigCommerceWebhooks("bc-client-secret").to_events(delivery, StoreContext())
    assert events == [ev.OrderChanged(order_id, received_at, fetch=ev.Fetch(received_at))]
    key = event_id_for(payload, STORE, "msg_1")
    assert key == (
        f"hash:{STORE}:store/order/created:{payload['hash']}" if event_id == "hash" else "msg_1"
    )


def test_the_hooks_registered_are_the_ones_the_manifest_lists():
    assert MANIFEST["platforms"]["bigcommerce"]["webhooks"]["scopes"] == list(WEBHOOK_SCOPES)
    assert "store_v2_information_read_only" in MANIFEST["platforms"]["bigcommerce"]["scopes"]


@pytest.mark.parametrize(
    ("status_id", "shipped", "refunded", "current", "cancelled"),
    [
        pytest.param(11, 0, 0, 3, False, id="awaiting-fulfillment"),
        pytest.param(3, 2, 0, 3, False, id="partially-shipped"),
        pytest.param(14, 0, 1, 2, False, id="refund-before-shipping-frees-a-unit"),
        pytest.param(14, 0, 0, 3, False, id="partial-refund-by-amount-takes-nothing"),
        pytest.param(14, 2, 2, 2, False, id="refunds-take-unshipped-units-first"),
        pytest.param(2, 3, 1, 3, False, id="a-return-never-unships"),
        pytest.param(4, 0, 0, 0, False, id="refunded-by-amount-nothing-more-ships"),
        pytest.param(4, 1, 3, 1, False, id="refunded-after-one-shipped"),
        pytest.param(5, 1, 0, 1, True, id="cancelled-keeps-what-shipped"),
        pytest.param(6, 0, 0, 0, False, id="declined"),
        pytest.param(0, 0, 0, 0, False, id="incomplete"),
    ],
)
@responses.activate
def test_a_v2_order_as_the_ledger_s_snapshot(status_id, shipped, refunded, current, cancelled):
    bc_connector._clients.clear()
    created = datetime(2026, 11, 2, 9, 15, 4, tzinfo=UTC)
    modified = datetime(2026, 11, 30, 18, 0, 59, tzinfo=UTC)
    products = [
        v2_order_product(31, 250, 206, 509, 3, shipped=shipped, refunded=refunded),
        {**v2_order_product(32, 250, 0, 0, 1), "type": "giftcertificate"},
    ]
    responses.get(
        f"{API}/v2/orders/250",
        json=v2_order(
            250,
            status_id,
            created=created,
            modified=modified,
            products=products,
            customer_locale="de-DE",
        ),
    )
    responses.get(f"{API}/v2/orders/250/products", json=products)

    order = store_connector().fetch_order("250")

    (line,) = order.lines  # the gift certificate has no product to mirror
    assert (
        line.quantity,
        line.current_quantity,
        line.fulfilled_quantity,
        line.refunded_quantity,
    ) == (
        3,
        current,
        shipped,
        refunded,
    )
    assert line.variant == ev.VariantRef("509", "product:206", "206")
    assert (order.placed_at, order.updated_at) == (created, modified)
    assert order.cancelled_at == (modified if cancelled else None)
    assert order.customer == ev.Customer("janedoe@email.com", "Jane Doe", "de-DE")
    assert (order.name, order.admin_url) == (
        "#250",
        f"https://store-{STORE}.mybigcommerce.com/manage/orders/250",
    )


@responses.activate
def test_store_facts_from_v2_store():
    bc_connector._clients.clear()
    documented = store_information()
    responses.get(f"{API}/v2/store", json=documented)
    assert store_connector().fetch_store() == ev.StoreFacts(
        timezone="America/Chicago",
        locale="en",
        country="US",
        name="BigCommerce",
        contact_email="info@janedoes.mybigcommerce.com",
        # The only origin the notify-me endpoint answers cross-origin for this store.
        storefront_origins=("https://my-awesome.store",),
        published_locales=("en",),
    )
    responses.replace(responses.GET, f"{API}/v2/store", json={**documented, "order_email": ""})
    bc_connector._clients.clear()
    assert store_connector().fetch_store().contact_email == "jane.does@example.com"


def test_orders_changed_since_misses_no_order_modified_while_it_reads(store):
    """300 orders, one a second; while the first page is read, order 5 changes (and moves to
    the end of the list). Paging by page number alone would now skip order 251."""
    api = store.catalogue
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    for number in range(1, 301):
        products = [v2_order_product(1000 + number, number, 206, 509, 1)]
        modified = start + timedelta(seconds=number - 1)
        api.put_order(
            v2_order(number, 11, created=modified, modified=modified, products=products),
            products,
        )

    seen: list[tuple[str, datetime]] = []
    for facts in store_connector().orders_changed_since(start):
        seen.append((facts.order_id, facts.updated_at))
        if facts.order_id == "100":
            later = start + timedelta(hours=1)
            order = {**api.orders[5], "date_modified": rfc2822(later)}
            api.put_order(order, api.order_products[5])

    ids = [order_id for order_id, _ in seen]
    assert sorted(set(ids), key=int) == [str(n) for n in range(1, 301)]
    # Order 5 twice: as first read, and changed; every other order once.
    assert len(ids) == 301
    assert seen[-1] == ("5", start + timedelta(hours=1))
    # From the start, then from the last order of the first page (a second back).
    assert [query["min_date_modified"] for query in listed_orders(store)] == [
        rfc2822(start - timedelta(seconds=1)),
        rfc2822(start + timedelta(seconds=248)),
    ]
