"""A worker takes a shop's events 25 to a transaction, reading what the stock changes among
them need up front (`plugin.services.batch_reads`). Whatever the mix of orders, stock changes,
cancellations, shipments and refunds, what the merchant and the shoppers end up with must be
exactly what taking them one at a time gives: the same badges, stock, backorder ledger and
customer mails.

Two sandbox stores with the same catalogue go through the same store actions; their webhooks
wait in the inbox (PostgreSQL and Redis, no worker), then one store's are drained one event per
transaction and the other's 25 per transaction, and the two outcomes are compared.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from plugin import jobs
from plugin.extensions import db
from plugin.models import (
    BackorderLine,
    InboxStatus,
    Order,
    OrderLine,
    OutboxMail,
    Variant,
    VariantBadge,
    WebhookEvent,
)
from plugin.services import sandbox_store
from plugin.services.sandbox_store import SandboxError
from tests.test_bigcommerce_order_lifecycle import quantities

CATALOGUE = [
    ("Small", "S", 2, "continue"),
    ("Medium", "M", 0, "continue"),
    ("Large", "L", 1, "deny"),
]

variant_index = st.integers(0, len(CATALOGUE) - 1)
order_index = st.integers(0, 5)
ACTIONS = st.one_of(
    st.tuples(st.just("order"), variant_index, st.integers(1, 3)),
    st.tuples(st.just("receive"), variant_index, st.integers(1, 4)),
    st.tuples(st.just("set"), variant_index, st.integers(-1, 3)),
    st.tuples(st.just("cancel"), order_index, st.just(0)),
    st.tuples(st.just("ship"), order_index, st.just(0)),
    st.tuples(st.just("refund"), order_index, st.integers(1, 2)),
    # Both stores' inboxes drained here: later stock changes meet backorders already open.
    st.tuples(st.just("drain"), st.just(0), st.just(0)),
)
# Backorder limits, so that the badges turn on the units owed.
LIMITS = {"Small": 1, "Medium": 3}


class Store:
    """A sandbox store whose webhooks are stored, not processed, until `drain`."""

    def __init__(self, domain: str):
        self.shop = sandbox_store.ensure_shop(db.session, domain)
        product, hooks = sandbox_store.create_product(db.session, self.shop, "Tee", CATALOGUE)
        db.session.commit()
        self.variants = [v.id for v in product.variants]
        self.orders: list[int] = []
        self.send(hooks)
        while jobs._drain_batch(self.shop.id)[0]:  # the catalogue mirrored
            pass
        for variant in db.session.scalars(select(Variant).where(Variant.shop_id == self.shop.id)):
            variant.backorder_limit = LIMITS.get(variant.title)
        db.session.commit()

    def send(self, hooks) -> None:
        assert set(sandbox_store.deliver(self.shop, hooks)) <= {200}

    def act(self, action: str, index: int, amount: int) -> None:
        session, shop = db.session, self.shop
        try:
            if action == "order":
                order, hooks = sandbox_store.place_order(
                    session, shop, self.variants[index], amount, f"c{len(self.orders)}@example.com"
                )
                self.orders.append(order.id)
            elif action == "receive":
                hooks = sandbox_store.receive_stock(session, shop, self.variants[index], amount)
            elif action == "set":
                hooks = sandbox_store.set_inventory(session, shop, self.variants[index], amount)
            elif not self.orders:
                return
            else:
                order_id = self.orders[index % len(self.orders)]
                if action == "cancel":
                    hooks = sandbox_store.cancel_order(session, shop, order_id)[1]
                elif action == "ship":
                    hooks = sandbox_store.ship_order(session, shop, order_id)[1]
                else:
                    hooks = sandbox_store.refund_units(session, shop, order_id, amount)
        except SandboxError:
            session.rollback()  # the store refused it, for both stores alike
            return
        session.commit()
        self.send(hooks)

    def drain_together(self) -> None:
        while jobs._drain_batch(self.shop.id)[0]:
            pass

    def drain_one_at_a_time(self) -> None:
        """The reference: each event in its own unit of work, reading as it goes."""
        tally = jobs._Tally(self.shop.id)
        while jobs._one_at_a_time(self.shop.id, 1, tally) is None:
            pass
        tally.effects.flush(self.shop.id)

    def outcome(self) -> dict:
        """What the merchant and shoppers see, in terms the two stores share (no row ids)."""
        session, shop_id = db.session, self.shop.id
        session.expire_all()
        rank = {
            order_id: n
            for n, order_id in enumerate(
                session.scalars(select(Order.id).where(Order.shop_id == shop_id).order_by(Order.id))
            )
        }
        variants = session.scalars(
            select(Variant).where(Variant.shop_id == shop_id).order_by(Variant.title)
        ).all()
        badges = {b.variant_id: b for b in session.scalars(select(VariantBadge))}
        lines = session.execute(
            select(BackorderLine, OrderLine.order_id, Variant.title)
            .join(OrderLine, OrderLine.id == BackorderLine.order_line_id)
            .join(Variant, Variant.id == BackorderLine.variant_id)
            .where(BackorderLine.shop_id == shop_id)
        ).all()
        mails = session.scalars(select(OutboxMail).where(OutboxMail.shop_id == shop_id)).all()
        statuses = session.scalars(
            select(WebhookEvent.status).where(WebhookEvent.shop_id == shop_id)
        ).all()
        return {
            "variants": [
                (
                    v.title,
                    v.inventory_total,
                    badges[v.id].state if v.id in badges else None,
                    badges[v.id].label if v.id in badges else None,
                    badges[v.id].eta if v.id in badges else None,
                )
                for v in variants
            ],
            "backorders": sorted(
                (rank[order_id], title, *quantities(line), line.promised_eta)
                for line, order_id, title in lines
            ),
            "mails": Counter((m.kind, m.recipient) for m in mails),
            "inbox": Counter(statuses),
        }


def compare(actions) -> tuple[dict, dict]:
    run = uuid.uuid4().hex[:8]
    one, many = Store(f"one-{run}.sandbox.local"), Store(f"many-{run}.sandbox.local")
    for action in actions:
        if action[0] == "drain":
            one.drain_one_at_a_time()
            many.drain_together()
            continue
        one.act(*action)
        many.act(*action)
    one.drain_one_at_a_time()
    many.drain_together()
    return one.outcome(), many.outcome()


@pytest.mark.usefixtures("queued_app")
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(ACTIONS, min_size=2, max_size=16))
def test_events_taken_together_end_as_taken_one_at_a_time(actions):
    one, many = compare(actions)
    assert many == one
    assert set(one["inbox"]) == {InboxStatus.PROCESSED}


def test_a_busy_hour_of_orders_and_restocks_ends_the_same(queued_app):
    """A fixed mix that takes every path: backorders opened, stock received and allocated to
    them, shipped, cancelled, refunded, sold out on a variant that stops selling."""
    actions = [
        ("order", 0, 2),  # Small's last 2
        ("drain", 0, 0),
        ("set", 0, -1),  # a recount: one of them is owed now, Small's limit is reached
        ("receive", 2, 1),
        ("drain", 0, 0),
        ("receive", 0, 1),
        ("order", 0, 3),  # 1 in stock, 2 backordered
        ("order", 1, 2),  # both backordered
        ("order", 2, 1),  # the last Large
        ("order", 2, 1),  # refused: Large stops selling at zero
        ("order", 1, 1),  # Medium owes 3: its limit
        ("drain", 0, 0),
        ("receive", 1, 1),  # one of Medium's three allocated: below its limit again
        ("receive", 1, 1),
        ("receive", 0, 1),
        ("ship", 0, 0),
        ("order", 0, 1),
        ("cancel", 1, 0),  # Medium's backorder cancelled: its received unit is free again
        ("receive", 0, 4),
        ("refund", 3, 1),
        ("set", 2, 3),
    ]
    one, many = compare(actions)
    assert many == one
    assert one["backorders"], "the mix must open backorders to prove anything"
    assert one["mails"], "and queue customer mails"
    assert set(one["inbox"]) == {InboxStatus.PROCESSED}
