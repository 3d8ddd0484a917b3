"""The ledger's pure core: whose units are short, and where each line's units stand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.badges import BadgeKind
from plugin.badge_engine import BadgeRules, InventorySnapshot, VariantOverrides, decide_badge
from plugin.services.restock import LineStake, settle

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)


def stake(
    key,
    ordered,
    *,
    current=None,
    fulfilled=0,
    reflected=True,
    backordered=0,
    minute=None,
    fresh=True,
):
    return LineStake(
        key=key,
        placed_at=T0 + timedelta(minutes=key if minute is None else minute),
        ordered=ordered,
        current=ordered if current is None else current,
        fulfilled=fulfilled,
        reflected=reflected,
        stock_current=fresh,
        backordered=backordered,
    )


def quantities(ledger):
    return (ledger.backordered, ledger.open, ledger.allocated, ledger.fulfilled, ledger.cancelled)


def test_only_the_units_not_on_hand_go_on_backorder_whatever_arrived_first():
    # Stock 1, an order of 3: the stock event first (stock shows -2), or the order first
    # (stock still shows 1, not yet counting the order): 2 backordered either way.
    assert quantities(settle([stake(1, 3)], -2)[1]) == (2, 2, 0, 0, 0)
    assert quantities(settle([stake(1, 3, reflected=False)], 1)[1]) == (2, 2, 0, 0, 0)
    # Stock 0, an order of 3: all 3.
    assert quantities(settle([stake(1, 3)], -3)[1]) == (3, 3, 0, 0, 0)
    assert quantities(settle([stake(1, 3, reflected=False)], 0)[1]) == (3, 3, 0, 0, 0)
    # Stock 5, an order of 3: none.
    assert quantities(settle([stake(1, 3)], 2)[1]) == (0, 0, 0, 0, 0)


def test_restocks_serve_the_oldest_lines_first_and_a_partly_covered_line_stays_open():
    lines = [stake(1, 3, backordered=3), stake(2, 2, backordered=2)]
    ledgers = settle(lines, -3)  # 2 units came back: the oldest line gets them
    assert quantities(ledgers[1]) == (3, 1, 2, 0, 0)
    assert quantities(ledgers[2]) == (2, 2, 0, 0, 0)


def test_a_cancelled_line_frees_its_units_for_the_next_customer():
    lines = [stake(1, 2, backordered=2), stake(2, 2, backordered=2)]
    assert quantities(settle(lines, -2)[1]) == (2, 0, 2, 0, 0)  # restock of 2: line 1 covered
    # Line 1 cancelled: the platform puts its 2 units back, and line 2 now has them.
    lines = [stake(1, 2, current=0, backordered=2), stake(2, 2, backordered=2)]
    ledgers = settle(lines, 0)
    assert quantities(ledgers[1]) == (2, 0, 0, 0, 2)
    assert quantities(ledgers[2]) == (2, 0, 2, 0, 0)


def test_shipments_use_the_units_in_stock_first():
    # Ordered 3 with 1 in stock: 2 backordered, later restocked (stock back to 1 after 3 came).
    line = stake(1, 3, backordered=2)
    assert quantities(settle([line], 1)[1]) == (2, 0, 2, 0, 0)
    shipped_two = stake(1, 3, fulfilled=2, backordered=2)
    assert quantities(settle([shipped_two], 1)[1]) == (2, 0, 1, 1, 0)
    shipped_all = stake(1, 3, fulfilled=3, backordered=2)
    assert quantities(settle([shipped_all], 1)[1]) == (2, 0, 0, 2, 0)


def test_a_partial_refund_before_shipping_cancels_backordered_units_first():
    # 3 ordered, 2 short; one refunded and restocked by the platform (stock -2 -> -1).
    line = stake(1, 3, current=2, backordered=2)
    assert quantities(settle([line], -1)[1]) == (2, 1, 0, 0, 1)
    # The app first hears of an order after one of its 2 units was refunded (stock 0, the
    # order not yet counted in it): the unit still on the order is owed.
    first_seen = stake(1, 2, current=1, reflected=False)
    assert quantities(settle([first_seen], 0)[1]) == (2, 1, 0, 0, 1)
    # The refund is known before its restock reaches the stock figure (still -2): the figure
    # is older than the order's change, so the refunded unit is not taken for a short one.
    refund_first = stake(1, 3, current=2, backordered=2, fresh=False)
    assert quantities(settle([refund_first], -2)[1]) == (2, 1, 0, 0, 1)


# -- random interleavings against a model of the platform ------------------------------------

Action = st.one_of(
    st.tuples(st.just("order"), st.integers(1, 4)),
    st.tuples(st.just("restock"), st.integers(1, 5)),
    st.tuples(st.just("cancel"), st.integers(0, 9)),
    st.tuples(st.just("remove_one"), st.integers(0, 9)),
    st.tuples(st.just("ship"), st.integers(0, 9)),
    st.tuples(st.just("correct"), st.integers(-3, 3)),
)


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 5),
    actions=st.lists(Action, max_size=25),
    limit=st.integers(0, 8),
    late=st.lists(st.booleans(), max_size=25),
)
def test_random_interleavings_keep_the_ledger_s_invariants(start, actions, limit, late):
    """A store that sells past zero: orders take stock below zero, restocks and cancellations
    (which restock) bring it back, shipments take units on hand. Some stock events arrive
    after the order events (the platform's figure does not count the newest order yet)."""
    on_hand = start
    orders: list[dict] = []
    memory: dict[int, int] = {}
    for step, (kind, value) in enumerate(actions):
        if kind == "order":
            orders.append({"key": len(orders), "ordered": value, "current": value, "shipped": 0})
        elif kind == "restock":
            on_hand += value
        elif kind == "correct":
            on_hand = max(0, on_hand + value)
        elif orders:
            order = orders[value % len(orders)]
            unshipped = order["current"] - order["shipped"]
            if kind == "cancel":
                order["current"] = order["shipped"]
            elif kind == "remove_one" and unshipped > 0:
                order["current"] -= 1
            elif kind == "ship":
                units = min(unshipped, on_hand)
                order["shipped"] += units
                on_hand -= units
        committed = sum(o["current"] - o["shipped"] for o in orders)
        available = on_hand - committed
        # Sometimes the newest order's stock event has not arrived: the figure lacks it.
        newest_late = bool(orders) and step < len(late) and late[step] and kind == "order"
        if newest_late:
            available += orders[-1]["current"]
        stakes = [
            LineStake(
                key=o["key"],
                placed_at=T0 + timedelta(minutes=o["key"]),
                ordered=o["ordered"],
                current=o["current"],
                fulfilled=o["shipped"],
                reflected=not (newest_late and o is orders[-1]),
                backordered=memory.get(o["key"], 0),
            )
            for o in orders
        ]
        ledgers = settle(stakes, available)
        memory = {k: v.backordered for k, v in ledgers.items()}

        true_available = on_hand - committed
        # Every line's backordered units are accounted for, never beyond what it ordered.
        for o in orders:
            ledger = ledgers[o["key"]]
            assert ledger.open + ledger.allocated + ledger.fulfilled + ledger.cancelled == (
                ledger.backordered
            )
            assert 0 <= ledger.backordered <= o["ordered"]
            assert ledger.allocated <= o["ordered"]
        # Units owed beyond stock are exactly the open ones: none lost, none counted twice.
        assert sum(v.open for v in ledgers.values()) == max(0, -true_available)
        # Allocated units are real units on hand, not also counted as available stock.
        assert sum(v.allocated for v in ledgers.values()) <= on_hand
        # Oldest first: while an older line waits, no newer line has been served.
        for older in orders:
            for newer in orders:
                if newer["key"] > older["key"] and ledgers[older["key"]].open > 0:
                    assert ledgers[newer["key"]].allocated == 0
        # The badge never offers a backorder once the owed units reach the limit.
        owed = sum(v.owed for v in ledgers.values())
        badge = decide_badge(
            BadgeRules(),
            InventorySnapshot(available=true_available, sells_past_zero=True),
            VariantOverrides(backorder_limit=limit),
            owed,
            T0.date(),
        )
        if owed >= limit:
            assert badge.state != BadgeKind.BACKORDER
