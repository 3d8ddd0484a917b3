"""Who is owed what: the backorder ledger of one variant, as a pure function of its stock.

The platforms subtract ordered units from stock, so while units are owed a variant's available
figure is below zero: -2 means two units are promised to customers and not on hand. That figure
is the truth about how many units are owed; the ledger only decides *whose* they are. Customers
are served in the order they bought, so restocked units cover the oldest lines first, which is
the same as saying the shortfall sits with the newest lines. Computing it afresh from the
platform's own numbers each time (stock, and each line's quantities) makes the result the same
whatever order the events arrived in, and a duplicate changes nothing.

No I/O and no clock: `plugin.services.ledger` feeds it and stores what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class LineStake:
    """One order line's claim on a variant's stock."""

    key: int
    placed_at: datetime
    # Units as ordered, still on the order (after removals, refunds before shipping and
    # cancellation), and shipped.
    ordered: int
    current: int
    fulfilled: int
    # The platform's stock figure already counts this order (its stock event came after it).
    reflected: bool = True
    # The stock figure is as new as the order's last change (or does not count the order at
    # all, which the settlement then subtracts as it stands). When the order changed after the
    # stock figure (a refund whose restock has not arrived yet), the figure may still show
    # units short that are not: they are not put on backorder until the stock catches up.
    stock_current: bool = True
    # Units of this line that went on backorder so far: the ledger's own memory.
    backordered: int = 0


@dataclass(frozen=True)
class LineLedger:
    """Where one line's backordered units stand: open + allocated + fulfilled + cancelled."""

    key: int
    backordered: int
    open: int
    allocated: int
    fulfilled: int
    cancelled: int

    @property
    def owed(self) -> int:
        """Units promised and not yet shipped: what counts towards a backorder limit."""
        return self.open + self.allocated


def units_short(stakes: Sequence[LineStake], available: int) -> int:
    """Units owed beyond stock on hand, counting orders the stock figure does not show yet."""
    unreflected = sum(s.current for s in stakes if not s.reflected)
    return max(0, unreflected - available)


def settle(stakes: Sequence[LineStake], available: int) -> dict[int, LineLedger]:
    """Each line's ledger for the variant's current `available` stock.

    The shortfall is laid on the newest lines first (so restocks serve the oldest); a line's
    backordered units never shrink but move on: covered by stock (allocated), shipped
    (fulfilled) or taken off the order (cancelled, which removes backordered units first).
    """
    remaining = units_short(stakes, available)
    short: dict[int, int] = {}
    for stake in sorted(stakes, key=lambda s: (s.placed_at, s.key), reverse=True):
        unshipped = max(0, stake.current - stake.fulfilled)
        short[stake.key] = min(unshipped, remaining)
        remaining -= short[stake.key]

    ledgers: dict[int, LineLedger] = {}
    for stake in stakes:
        removed = max(0, stake.ordered - stake.current)
        backordered = max(stake.backordered, short[stake.key])
        if short[stake.key] and (stake.stock_current or not stake.reflected):
            # Units taken off the order are counted as backordered ones first, so the units
            # short now come on top of them (this also holds when the first snapshot the app
            # sees already has units removed).
            backordered = max(backordered, short[stake.key] + removed)
        backordered = min(backordered, stake.ordered)
        cancelled = min(backordered, removed)
        live = backordered - cancelled
        # Shipments use the units that were in stock first.
        in_stock_units = max(0, stake.current - live)
        fulfilled = min(live, max(0, stake.fulfilled - in_stock_units))
        open_units = min(short[stake.key], live - fulfilled)
        ledgers[stake.key] = LineLedger(
            key=stake.key,
            backordered=backordered,
            open=open_units,
            allocated=live - fulfilled - open_units,
            fulfilled=fulfilled,
            cancelled=cancelled,
        )
    return ledgers
