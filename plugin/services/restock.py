"""Which open backorder lines restocked units cover: the oldest first."""

from __future__ import annotations

from collections.abc import Sequence


def lines_covered_by_stock(open_lines: Sequence[tuple[int, int]], available: int) -> list[int]:
    """Ids of the lines that stock now covers.

    `open_lines` are (id, quantity), oldest first. Platforms that sell past zero count
    backordered units as negative stock, so `available` of -3 with 5 units open means 2 of them
    are covered. A line is covered only whole; lines behind an uncovered one wait their turn.
    """
    open_units = sum(quantity for _, quantity in open_lines)
    covered = open_units - max(0, -available)
    allocated: list[int] = []
    for line_id, quantity in open_lines:
        if quantity > covered:
            break
        covered -= quantity
        allocated.append(line_id)
    return allocated
