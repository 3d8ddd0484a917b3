"""What a drain batch reads up front for its stock changes, so each of them reads nothing.

A worker takes up to 25 of a shop's events in one unit of work (`plugin.jobs._drain_batch`).
Most are stock changes, and each would read its variant, its stock levels, its orders' open
lines, the units it owes and its badge: five round trips, and an ORM flush before each. Read
for the whole batch in a few statements, with one flush at the end, a stock change costs the
worker a fraction of that, which is what lets it keep up with a busy store.

Why the answers stay right:

- The reads belong to one transaction and one shop; any other transaction ignores them.
- The variants are locked as `catalog.find_variant` locks them one by one, in id order, so two
  drains of one shop never deadlock on them. The lock is FOR NO KEY UPDATE (what an UPDATE of
  the row takes): it keeps other drains out, but not a badge push recording its delivery,
  whose foreign key to the variant only needs KEY SHARE. With FOR UPDATE, a push holding a
  badge that a drain was about to update, and waiting for that drain's variant, deadlocked.
- Anything but a stock change (an order, a product, an uninstall, mirroring a new product)
  drops them all before it runs: from there on, every read goes to the database again.
- A variant whose backorder lines a stock change settled is forgotten at once, so the units it
  owes are read again, after that change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from domain.events import VariantRef
from plugin.models import (
    BackorderLine,
    BackorderStatus,
    Order,
    OrderLine,
    Variant,
    VariantBadge,
)

_KEY = "batch_reads"
# Backorder lines still owed (`ledger.OWING` is this one).
OWING = (BackorderStatus.OPEN, BackorderStatus.ALLOCATED)


def this_transaction(session: Session, key: str) -> dict:
    """A dict in `session.info` that lives as long as the session's current transaction: a
    new transaction finds it empty. What was read in one transaction is never trusted in
    another (the catalogue's location ids and the batch reads below both live here)."""
    transaction = session.get_transaction()
    kept = session.info.get(key)
    if kept is None or kept[0] is not transaction:
        kept = session.info[key] = (transaction, {})
    return kept[1]


@dataclass
class BatchReads:
    shop_id: int
    # Held, like everything read here, so the session's identity map (which holds clean
    # objects weakly) keeps it: each event's `session.get` of its shop is then no round trip.
    shop: Any = None
    by_platform_id: dict[str, Variant] = field(default_factory=dict)
    by_item_id: dict[str, Variant] = field(default_factory=dict)
    # variant id -> its (OrderLine, Order, BackorderLine | None) rows, as settling reads them
    stakes: dict[int, list] = field(default_factory=dict)
    # variant id -> open and allocated units
    owed: dict[int, int] = field(default_factory=dict)
    badges: list[VariantBadge] = field(default_factory=list)

    def variant(self, ref: VariantRef) -> Variant | None:
        found = self.by_platform_id.get(ref.variant_id) if ref.variant_id is not None else None
        if found is None and ref.inventory_item_id is not None:
            found = self.by_item_id.get(ref.inventory_item_id)
        return found

    def forget(self, variant_id: int) -> None:
        self.stakes.pop(variant_id, None)
        self.owed.pop(variant_id, None)


def current(session: Session, shop_id: int) -> BatchReads | None:
    """The reads made for this transaction and shop, if any are still good."""
    reads = this_transaction(session, _KEY).get("reads")
    return reads if reads is not None and reads.shop_id == shop_id else None


def drop(session: Session) -> None:
    this_transaction(session, _KEY).pop("reads", None)


def read_ahead(session: Session, shop, refs: Iterable[VariantRef]) -> BatchReads | None:
    """Read (and lock) everything the stock changes naming `refs` will ask for."""
    shop_id = shop.id
    refs = list(refs)
    variant_ids = sorted({r.variant_id for r in refs if r.variant_id is not None})
    item_ids = sorted({r.inventory_item_id for r in refs if r.inventory_item_id is not None})
    if not variant_ids and not item_ids:
        return None
    named = []
    if variant_ids:
        named.append(Variant.platform_id.in_(variant_ids))
    if item_ids:
        named.append(Variant.inventory_item_id.in_(item_ids))
    variants = session.scalars(
        select(Variant)
        .where(Variant.shop_id == shop_id, or_(*named))
        .options(selectinload(Variant.levels))
        .order_by(Variant.id)
        .with_for_update(key_share=True)
    ).all()
    reads = BatchReads(shop_id=shop_id, shop=shop)
    for variant in variants:
        reads.by_platform_id.setdefault(variant.platform_id, variant)
        if variant.inventory_item_id is not None:
            reads.by_item_id.setdefault(variant.inventory_item_id, variant)
    ids = [v.id for v in variants]
    if ids:
        reads.stakes = {i: [] for i in ids}
        for row in session.execute(stakes_query(OrderLine.variant_id.in_(ids))).all():
            reads.stakes[row[0].variant_id].append(row)
        reads.owed = dict.fromkeys(ids, 0)
        owed = session.execute(
            select(BackorderLine.variant_id, owed_units())
            .where(BackorderLine.variant_id.in_(ids), BackorderLine.status.in_(OWING))
            .group_by(BackorderLine.variant_id)
        )
        reads.owed.update({variant_id: units for variant_id, units in owed})
        # Held here too: `session.get` then finds each badge without a round trip.
        reads.badges = session.scalars(
            select(VariantBadge).where(VariantBadge.variant_id.in_(ids))
        ).all()
    this_transaction(session, _KEY)["reads"] = reads
    return reads


def stakes_query(which):
    """A variant's order lines that still matter to its backorders, oldest order first (as the
    queue is served), with their order and backorder line."""
    return (
        select(OrderLine, Order, BackorderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .outerjoin(BackorderLine, BackorderLine.order_line_id == OrderLine.id)
        .where(
            which,
            or_(
                OrderLine.current_quantity > OrderLine.fulfilled_quantity,
                BackorderLine.status.in_(OWING),
            ),
        )
        .order_by(Order.placed_at, OrderLine.id)
    )


def owed_units():
    return func.coalesce(
        func.sum(BackorderLine.open_quantity + BackorderLine.allocated_quantity), 0
    )
