"""Who is alerted in one back-in-stock batch: a pure decision, no I/O.

The anchors alert everyone at once, so eighty people chase five units. Here each batch alerts
at most `rate_per_unit` subscribers per unit in stock at that moment, in sign-up order, and
none while the variant is sold out; the caller re-reads the stock before every batch.
"""

from __future__ import annotations

from collections.abc import Sequence

# An untracked variant never runs out: everyone waiting may hear, a batch at a time.
UNLIMITED_BATCH = 500


def batch_size(units_in_stock: int | None, rate_per_unit: int, waiting: int) -> int:
    """How many to alert now. `units_in_stock` None means the store doesn't count stock."""
    if waiting <= 0:
        return 0
    if units_in_stock is None:
        return min(waiting, UNLIMITED_BATCH)
    return max(0, min(waiting, units_in_stock * max(1, rate_per_unit)))


def next_batch(
    waiting_in_order: Sequence[int], units_in_stock: int | None, rate_per_unit: int
) -> list[int]:
    """The subscribers to alert in this batch: the first ones in sign-up order."""
    size = batch_size(units_in_stock, rate_per_unit, len(waiting_in_order))
    return list(waiting_in_order[:size])
