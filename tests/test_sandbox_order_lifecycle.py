"""An order's life in the sandbox store, driven through its admin pages: each store action is a
signed webhook through the real endpoint, inbox and worker (jobs inline), and the app's
backorder ledger, the lines' timelines and the badge follow.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from plugin.extensions import db
from plugin.models import (
    BackorderLine,
    BackorderStatus,
    InboxStatus,
    Order,
    OrderLine,
    SandboxOrder,
    SandboxVariant,
    WebhookEvent,
)
from plugin.services import sandbox_store
from tests import factories

EMAILS = ("ada@example.com", "grace@example.com", "edsger@example.com")


# --- driving the store through its pages -------------------------------------------------


def store_with(stock: int = 0, policy: str = "continue") -> int:
    """The sandbox store with one product of one variant ("Medium"); its variant id."""
    shop = factories.shop()
    product = factories.sandbox_product(shop, "Tee", [("Medium", "TEE-M", stock, policy)])
    return product.variants[0].id


def page_action(client, path: str, **form) -> str:
    """POST a store form, follow to the page, and return the status message it shows."""
    response = client.post(path, data={k: str(v) for k, v in form.items()}, follow_redirects=True)
    assert response.status_code == 200
    messages = re.findall(r'<div class="flash (\w+)" role="status">(.*?)</div>', response.text)
    assert len(messages) == 1, messages
    return messages[0][1]


def place(client, variant_id: int, quantity: int, email: str) -> int:
    message = page_action(
        client, "/sandbox/orders", variant_id=variant_id, quantity=quantity, email=email
    )
    assert message.endswith("placed."), message
    return db.session.scalars(select(SandboxOrder).order_by(SandboxOrder.id.desc())).first().id


def receive(client, variant_id: int, units: int) -> str:
    return page_action(client, f"/sandbox/variants/{variant_id}/receive", units=units)


def order_action(client, order_id: int, action: str, **form) -> str:
    return page_action(client, f"/sandbox/orders/{order_id}/{action}", **form)


# --- reading the app's side ----------------------------------------------------------------


def line_of(order_id: int) -> BackorderLine | None:
    db.session.expire_all()
    return db.session.scalars(
        select(BackorderLine)
        .join(OrderLine, OrderLine.id == BackorderLine.order_line_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.platform_id == str(order_id))
    ).one_or_none()


def quantities(order_id: int) -> tuple[BackorderStatus, int, int, int, int]:
    """(status, open, allocated, fulfilled, cancelled) of the order's backorder line."""
    line = line_of(order_id)
    assert line is not None, f"order {order_id} has no backorder line"
    assert line.quantity == (
        line.open_quantity
        + line.allocated_quantity
        + line.fulfilled_quantity
        + line.cancelled_quantity
    )
    return (
        line.status,
        line.open_quantity,
        line.allocated_quantity,
        line.fulfilled_quantity,
        line.cancelled_quantity,
    )


def timeline(order_id: int) -> list[tuple[str, int, str]]:
    """The line's steps as (kind, units, cause); each names the stored webhook behind it."""
    line = line_of(order_id)
    for step in line.steps:
        event = db.session.get(WebhookEvent, step.webhook_event_id)
        assert event is not None and event.topic == step.cause
    return [(step.kind, step.quantity, step.cause) for step in line.steps]


def badge(client, variant_id: int) -> str:
    response = client.get(
        f"/storefront/v1/badges?shop={factories.SANDBOX_SHOP}&variants={variant_id}"
    )
    return response.json["variants"][str(variant_id)]["state"]


def stock_figures(client, variant_id: int) -> dict[str, int]:
    """On hand, reserved and owed, as the admin page shows them for the variant."""
    page = client.get("/sandbox/").text
    row = page.split(f'<tr id="variant-{variant_id}">', 1)[1].split("</tr>", 1)[0]
    return {
        name: int(re.search(rf'class="num figure {name}[^"]*">(-?\d+)</td>', row).group(1))
        for name in ("on-hand", "reserved", "owed")
    }


def waiting(client, variant_id: int) -> list[tuple[str, str, int, int]]:
    """The customers waiting for the variant on the admin page: (order, email, open, reserved)."""
    page = client.get("/sandbox/").text
    marker = f'<tr class="queue-row" id="variant-{variant_id}-waiting">'
    if marker not in page:
        return []
    queue = page.split(marker, 1)[1].split("</table>", 1)[0]
    rows = re.findall(
        r'<a href="#order-\d+">(#\d+)</a></th>\s*<td>([^<]+)</td>\s*'
        r'<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>',
        queue,
    )
    return [(name, email, int(o), int(a)) for name, email, o, a in rows]


def name(order_id: int) -> str:
    return f"#{1000 + order_id}"


# --- the lifecycles ------------------------------------------------------------------------


def test_backorder_restock_allocate_ship_in_two_parts_fulfilled(client):
    vid = store_with(stock=0)
    order = place(client, vid, 2, EMAILS[0])
    assert quantities(order) == (BackorderStatus.OPEN, 2, 0, 0, 0)
    assert badge(client, vid) == "backorder"
    assert stock_figures(client, vid) == {"on-hand": 0, "reserved": 0, "owed": 2}
    assert waiting(client, vid) == [(name(order), EMAILS[0], 2, 0)]

    # Nothing on the shelf: the store will not ship, and nothing changes.
    events = db.session.scalar(select(func.count()).select_from(WebhookEvent))
    refused = order_action(client, order, "ship", units=2)
    assert refused == "Only 0 unit(s) of Medium on hand; receive stock before shipping."
    assert db.session.get(SandboxOrder, order).shipped_quantity == 0
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == events

    assert receive(client, vid, 3) == "Received 3 units of Medium; 3 on hand."
    assert quantities(order) == (BackorderStatus.ALLOCATED, 0, 2, 0, 0)
    assert badge(client, vid) == "in_stock"  # one unit left over for new customers
    assert stock_figures(client, vid) == {"on-hand": 3, "reserved": 2, "owed": 0}
    assert waiting(client, vid) == [(name(order), EMAILS[0], 0, 2)]

    shipped = order_action(client, order, "ship", units=1)
    assert shipped == f"Shipped 1 unit of order {name(order)}; 1 unit still to ship."
    assert quantities(order) == (BackorderStatus.ALLOCATED, 0, 1, 1, 0)
    # Shipping takes units off the shelf, not off sale.
    assert db.session.get(SandboxVariant, vid).inventory == 1
    assert stock_figures(client, vid) == {"on-hand": 2, "reserved": 1, "owed": 0}

    assert order_action(client, order, "ship") == (
        f"Shipped 1 unit of order {name(order)}; fully shipped."
    )
    assert quantities(order) == (BackorderStatus.FULFILLED, 0, 0, 2, 0)
    assert timeline(order) == [
        ("opened", 2, "orders/create"),
        ("allocated", 2, "inventory_levels/update"),
        ("fulfilled", 1, "orders/partially_fulfilled"),
        ("fulfilled", 1, "orders/fulfilled"),
    ]
    assert badge(client, vid) == "in_stock"
    assert stock_figures(client, vid) == {"on-hand": 1, "reserved": 0, "owed": 0}
    assert waiting(client, vid) == []


def test_a_cancelled_order_frees_its_units_for_the_next_customer_oldest_first(client):
    vid = store_with(stock=0)
    first, second, third = (
        place(client, vid, q, e) for q, e in zip((2, 1, 2), EMAILS, strict=True)
    )
    receive(client, vid, 2)
    assert quantities(first) == (BackorderStatus.ALLOCATED, 0, 2, 0, 0)
    assert quantities(second) == (BackorderStatus.OPEN, 1, 0, 0, 0)
    assert quantities(third) == (BackorderStatus.OPEN, 2, 0, 0, 0)

    message = order_action(client, first, "cancel")
    assert message == f"Order {name(first)} cancelled; 2 units back in stock."
    assert quantities(first) == (BackorderStatus.CANCELLED, 0, 0, 0, 2)
    assert timeline(first) == [
        ("opened", 2, "orders/create"),
        ("allocated", 2, "inventory_levels/update"),
        ("cancelled", 2, "orders/cancelled"),
    ]
    # The two units come back to the next customers in order date order.
    assert quantities(second) == (BackorderStatus.ALLOCATED, 0, 1, 0, 0)
    assert quantities(third) == (BackorderStatus.OPEN, 1, 1, 0, 0)
    assert timeline(second)[-1] == ("allocated", 1, "inventory_levels/update")
    assert waiting(client, vid) == [
        (name(second), EMAILS[1], 0, 1),
        (name(third), EMAILS[2], 1, 1),
    ]
    assert stock_figures(client, vid) == {"on-hand": 2, "reserved": 2, "owed": 1}
    assert badge(client, vid) == "backorder"
    # The ledger keeps only what shipped of a cancelled order: nothing.
    ledger_line = line_of(first).order_line
    assert (ledger_line.current_quantity, ledger_line.order.cancelled_at is not None) == (0, True)


def test_a_partial_refund_before_shipping_then_a_cancellation(client):
    vid = store_with(stock=1)
    order = place(client, vid, 3, EMAILS[0])
    # One unit was on hand: only the other two are on backorder.
    assert quantities(order) == (BackorderStatus.OPEN, 2, 0, 0, 0)

    message = order_action(client, order, "refund", units=1)
    assert message == f"Refunded 1 unit of order {name(order)}; back in stock."
    # refunds/create names the order only; the app read it from the store.
    assert quantities(order) == (BackorderStatus.OPEN, 1, 0, 0, 1)
    ledger_line = line_of(order).order_line
    assert (ledger_line.current_quantity, ledger_line.refunded_quantity) == (2, 1)
    assert stock_figures(client, vid) == {"on-hand": 1, "reserved": 0, "owed": 1}
    assert badge(client, vid) == "backorder"

    order_action(client, order, "cancel")
    assert quantities(order) == (BackorderStatus.CANCELLED, 0, 0, 0, 2)
    assert timeline(order) == [
        ("opened", 2, "orders/create"),
        ("cancelled", 1, "refunds/create"),
        ("cancelled", 1, "orders/cancelled"),
    ]
    assert db.session.get(SandboxVariant, vid).inventory == 1
    assert badge(client, vid) == "in_stock"
    assert stock_figures(client, vid) == {"on-hand": 1, "reserved": 0, "owed": 0}


def test_removing_a_line_cancels_its_units_and_serves_the_next_order(client):
    vid = store_with(stock=0)
    first = place(client, vid, 2, EMAILS[0])
    second = place(client, vid, 1, EMAILS[1])
    receive(client, vid, 1)
    assert quantities(first) == (BackorderStatus.OPEN, 1, 1, 0, 0)

    message = order_action(client, first, "quantity", quantity=0)
    assert message == f"Line removed from order {name(first)}; 2 units back in stock."
    assert quantities(first) == (BackorderStatus.CANCELLED, 0, 0, 0, 2)
    assert timeline(first) == [
        ("opened", 2, "orders/create"),
        ("allocated", 1, "inventory_levels/update"),
        ("cancelled", 2, "orders/edited"),
    ]
    assert quantities(second) == (BackorderStatus.ALLOCATED, 0, 1, 0, 0)
    assert waiting(client, vid) == [(name(second), EMAILS[1], 0, 1)]
    # The edit reached the app as Shopify sends it: the edit, then the order after it.
    topics = db.session.scalars(
        select(WebhookEvent.topic)
        .where(WebhookEvent.order_id == str(first))
        .order_by(WebhookEvent.id)
    ).all()
    assert topics == ["orders/create", "orders/edited", "orders/updated"]
    assert badge(client, vid) == "backorder"


def test_reducing_a_quantity_cancels_only_the_units_taken_off(client):
    vid = store_with(stock=0)
    order = place(client, vid, 3, EMAILS[0])
    message = order_action(client, order, "quantity", quantity=1)
    assert message == f"Order {name(order)} now has 1 unit; 2 units back in stock."
    assert quantities(order) == (BackorderStatus.OPEN, 1, 0, 0, 2)
    assert timeline(order) == [("opened", 3, "orders/create"), ("cancelled", 2, "orders/edited")]
    assert db.session.get(SandboxVariant, vid).inventory == -1
    assert stock_figures(client, vid) == {"on-hand": 0, "reserved": 0, "owed": 1}


@pytest.mark.parametrize(
    "delivery", ["as sent", "stock first", "each twice"], ids=lambda d: d.replace(" ", "-")
)
def test_a_cancellation_settles_the_same_whatever_the_arrival_order(client, delivery):
    shop = factories.shop()
    vid = factories.sandbox_product(shop).variants[0].id
    orders = []
    for quantity, email in zip((2, 1), EMAILS[:2], strict=True):
        order, hooks = factories.sandbox_order(shop, vid, quantity, email)
        sandbox_store.deliver(shop, hooks)
        orders.append(order.id)
    hooks = sandbox_store.receive_stock(db.session, shop, vid, 2)
    db.session.commit()
    sandbox_store.deliver(shop, hooks)

    _units, hooks = sandbox_store.cancel_order(db.session, shop, orders[0])
    db.session.commit()
    if delivery == "stock first":
        hooks = hooks[::-1]
    elif delivery == "each twice":
        hooks = [hook for hook in hooks for _ in (1, 2)]
    assert sandbox_store.deliver(shop, hooks) == [200] * len(hooks)

    assert quantities(orders[0]) == (BackorderStatus.CANCELLED, 0, 0, 0, 2)
    assert quantities(orders[1]) == (BackorderStatus.ALLOCATED, 0, 1, 0, 0)
    assert [kind for kind, _n, _cause in timeline(orders[0])] == [
        "opened",
        "allocated",
        "cancelled",
    ]
    assert timeline(orders[1]) == [
        ("opened", 1, "orders/create"),
        ("allocated", 1, "inventory_levels/update"),
    ]


def test_a_missed_cancellation_is_healed_by_reconciliation(app, client):
    shop = factories.shop()
    vid = factories.sandbox_product(shop).variants[0].id
    order = place(client, vid, 2, EMAILS[0])
    # The store cancels, but its webhooks never reach the app.
    sandbox_store.cancel_order(db.session, shop, order)
    db.session.commit()
    assert quantities(order) == (BackorderStatus.OPEN, 2, 0, 0, 0)

    result = app.test_cli_runner().invoke(args=["reconcile", "--shop", factories.SANDBOX_SHOP])
    assert result.exit_code == 0, result.output
    assert quantities(order) == (BackorderStatus.CANCELLED, 0, 0, 0, 2)
    assert [(step.kind, step.cause) for step in line_of(order).steps][-1] == (
        "cancelled",
        "reconcile",
    )


def test_every_order_topic_carries_the_whole_order_or_asks_for_it(client):
    from datetime import UTC, datetime

    from domain import events as ev
    from webhooks.sandbox import ORDER_TOPICS, SandboxWebhooks
    from webhooks.source import StoreContext, StoredDelivery

    vid = store_with(stock=0)
    order_id = place(client, vid, 3, EMAILS[0])
    receive(client, vid, 3)
    order_action(client, order_id, "refund", units=1)
    order_action(client, order_id, "ship", units=1)
    order = db.session.get(SandboxOrder, order_id)
    payload = sandbox_store.order_payload(order)
    received = datetime.now(UTC)
    source = SandboxWebhooks("test-secret-key")

    def translate(topic, body):
        delivery = StoredDelivery(topic, json.dumps(body).encode(), received, received)
        return source.to_events(delivery, StoreContext())

    expected = ev.OrderFacts(
        order_id=str(order_id),
        placed_at=order.created_at,
        name=name(order_id),
        customer=ev.Customer(email=EMAILS[0], locale="en"),
        lines=(
            ev.OrderLine(
                line_id=str(order_id * 10),
                variant=ev.VariantRef(variant_id=str(vid)),
                quantity=3,
                current_quantity=2,
                fulfilled_quantity=1,
                refunded_quantity=1,
            ),
        ),
        cancelled_at=None,
        admin_url=f"/sandbox/#order-{order_id}",
        updated_at=order.updated_at,
    )
    for topic in ORDER_TOPICS:
        assert translate(topic, payload) == [ev.OrderChanged(str(order_id), received, expected)]
    fetch = [ev.OrderChanged(str(order_id), received, fetch=ev.Fetch(received))]
    refund = sandbox_store.refund_payload(order, 1, received)
    edit = sandbox_store.order_edit_payload(order, 1, received)
    assert translate("refunds/create", refund) == fetch
    assert translate("orders/edited", edit) == fetch

    order_action(client, order_id, "cancel")
    db.session.expire_all()
    cancelled = translate("orders/cancelled", sandbox_store.order_payload(order))[0].order
    assert cancelled.cancelled_at == order.cancelled_at == order.updated_at
    assert cancelled.lines[0].current_quantity == 1  # what shipped stays on the order


# --- refusals ------------------------------------------------------------------------------

REFUSALS = [
    ("ship", {"units": "3"}, "Only 2 unit(s) of order {name} are left to ship."),
    ("ship", {"units": "0"}, "Ship at least 1 unit."),
    ("ship", {"units": "two"}, "Units must be a whole number; nothing changed."),
    ("refund", {"units": "0"}, "Refund at least 1 unit."),
    (
        "refund",
        {"units": "5"},
        "Only 2 unit(s) of order {name} are unshipped; shipped units are returned, "
        "not refunded here.",
    ),
    ("quantity", {"quantity": "-1"}, "The new quantity cannot be negative."),
    (
        "quantity",
        {"quantity": "2"},
        "Order {name} has 2 unit(s); an edit here can only take units off.",
    ),
    ("quantity", {"quantity": ""}, "Quantity must be a whole number; nothing changed."),
]


@pytest.mark.parametrize(
    ("action", "form", "message"), REFUSALS, ids=[f"{a}-{f}" for a, f, _m in REFUSALS]
)
def test_bad_input_is_refused_on_the_page_and_changes_nothing(client, action, form, message):
    vid = store_with(stock=0)
    order = place(client, vid, 2, EMAILS[0])
    receive(client, vid, 5)
    before = _snapshot(order, vid)

    assert order_action(client, order, action, **form) == message.format(name=name(order))
    assert _snapshot(order, vid) == before


@pytest.mark.parametrize("action", ["cancel", "ship", "refund", "quantity"])
def test_a_cancelled_order_cannot_be_changed(client, action):
    vid = store_with(stock=0)
    order = place(client, vid, 2, EMAILS[0])
    order_action(client, order, "cancel")
    before = _snapshot(order, vid)
    verb = {"cancel": "cancelled", "ship": "shipped", "refund": "refunded", "quantity": "edited"}
    assert order_action(client, order, action, units=1, quantity=1) == (
        f"Order {name(order)} is cancelled; it cannot be {verb[action]}."
    )
    assert _snapshot(order, vid) == before


@pytest.mark.parametrize("action", ["cancel", "ship", "refund", "quantity"])
def test_another_stores_order_is_refused(client, action):
    store_with(stock=0)
    other = factories.shop("other.sandbox.local")
    other_variant = factories.sandbox_product(other, deliver=False).variants[0].id
    theirs, _hooks = factories.sandbox_order(other, other_variant, 2, "them@example.com")
    before = _snapshot(theirs.id, other_variant)

    assert order_action(client, theirs.id, action, units=1, quantity=1) == (
        "No such order in this store."
    )
    assert _snapshot(theirs.id, other_variant) == before


def _snapshot(order_id: int, variant_id: int):
    """The store's order and stock and the app's inbox: what a refused action must not touch."""
    db.session.expire_all()
    order = db.session.get(SandboxOrder, order_id)
    return (
        order.current_quantity,
        order.shipped_quantity,
        order.refunded_quantity,
        order.cancelled_at,
        order.updated_at,
        db.session.get(SandboxVariant, variant_id).inventory,
        db.session.scalar(select(func.count()).select_from(WebhookEvent)),
        db.session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.status != InboxStatus.PROCESSED)
        ),
    )
