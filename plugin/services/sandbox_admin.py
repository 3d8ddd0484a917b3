"""What the sandbox store's admin page shows: the store's own stock and orders, side by side
with the app's backorder ledger for them.

The sandbox is the app's own dev page, so it may read the app's ledger (the "platform" side
never does when deciding anything): per variant the units on hand, reserved for backorders and
still owed, and the customers waiting, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import (
    BackorderLine,
    BackorderStatus,
    Order,
    OrderLine,
    SandboxOrder,
    SandboxProduct,
    SandboxVariant,
    Shop,
    Variant,
)
from plugin.services import ledger, sandbox_store
from plugin.services.shop_time import shop_zone


@dataclass
class VariantStock:
    variant: SandboxVariant
    # The store's own figures: units on the shelf, and available to sell (below zero while
    # units are owed).
    on_hand: int
    available: int
    # The app's ledger: restocked units held for backorders, and units still waiting.
    reserved: int = 0
    owed: int = 0
    waiting: list[BackorderLine] = field(default_factory=list)


@dataclass
class OrderRow:
    order: SandboxOrder
    variant: SandboxVariant
    name: str
    status: str
    tone: str
    live_quantity: int
    unshipped: int
    backorder: BackorderLine | None = None

    @property
    def backorder_summary(self) -> tuple[str, str] | None:
        """(text, tone) of the app's ledger line for this order, if any unit went on backorder."""
        line = self.backorder
        if line is None:
            return None
        if line.status == BackorderStatus.OPEN:
            text = f"Backorder: {line.open_quantity} waiting"
            if line.allocated_quantity:
                text += f", {line.allocated_quantity} reserved"
            return text, "warning"
        if line.status == BackorderStatus.ALLOCATED:
            return f"Backorder: {line.allocated_quantity} reserved", "info"
        if line.status == BackorderStatus.FULFILLED:
            return f"Backorder: {line.fulfilled_quantity} shipped", "success"
        return f"Backorder: {line.cancelled_quantity} cancelled", "neutral"


@dataclass
class Overview:
    stock: dict[int, VariantStock]
    orders: list[OrderRow]


def store_status(order: SandboxOrder) -> tuple[str, str]:
    """The store's fulfilment status of an order, and its tone."""
    if order.cancelled_at is not None:
        return "Cancelled", "neutral"
    if sandbox_store.unshipped(order) == 0:
        if order.shipped_quantity:
            return "Fulfilled", "success"
        return "Nothing to ship", "neutral"
    if order.shipped_quantity:
        return "Partially fulfilled", "warning"
    return "Unfulfilled", "attention"


def overview(session: Session, shop: Shop, products: list[SandboxProduct]) -> Overview:
    variants = {v.id: v for p in products for v in p.variants}
    committed = sandbox_store.committed(session, shop)
    stock = {
        vid: VariantStock(
            variant=v, on_hand=v.inventory + committed.get(vid, 0), available=v.inventory
        )
        for vid, v in variants.items()
    }
    # The app's mirror names each store variant by its id.
    mirrored = {
        int(platform_id): variant_id
        for variant_id, platform_id in session.execute(
            select(Variant.id, Variant.platform_id).where(
                Variant.shop_id == shop.id,
                Variant.platform_id.in_([str(vid) for vid in variants]),
            )
        )
    }
    store_id_of = {mirror_id: store_id for store_id, mirror_id in mirrored.items()}
    for line in ledger.owing_lines(session, mirrored.values()):
        row = stock[store_id_of[line.variant_id]]
        row.reserved += line.allocated_quantity
        row.owed += line.open_quantity
        row.waiting.append(line)

    orders = sandbox_store.list_orders(session, shop)
    backorders = _backorders_by_order(session, shop, [o.id for o in orders])
    rows = []
    for order in orders:
        status, tone = store_status(order)
        rows.append(
            OrderRow(
                order=order,
                variant=variants.get(order.variant_id)
                or session.get(SandboxVariant, order.variant_id),
                name=sandbox_store.order_name(order),
                status=status,
                tone=tone,
                live_quantity=sandbox_store.live_quantity(order),
                unshipped=sandbox_store.unshipped(order),
                backorder=backorders.get(order.id),
            )
        )
    return Overview(stock=stock, orders=rows)


def _backorders_by_order(
    session: Session, shop: Shop, order_ids: list[int]
) -> dict[int, BackorderLine]:
    if not order_ids:
        return {}
    rows = session.execute(
        select(Order.platform_id, BackorderLine)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(BackorderLine, BackorderLine.order_line_id == OrderLine.id)
        .where(Order.shop_id == shop.id, Order.platform_id.in_([str(i) for i in order_ids]))
    )
    # A sandbox order has one line, so at most one backorder line.
    return {int(platform_id): line for platform_id, line in rows}


def format_moment(moment: datetime | None, timezone: str | None) -> str:
    """A time as the merchant reads it, in the store's zone: "30 Nov 2026, 17:20"."""
    if moment is None:
        return ""
    local = moment.astimezone(shop_zone(timezone))
    return f"{local.day} {local:%b %Y, %H:%M}"
