"""The support desk's variant page: stock per location, the badge and why, who waits for it,
and its timeline (plugin.services.variant_timeline). "Heal now" is plugin.services.variant_heal.

No Flask here: the view renders and commits (one commit boundary per request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.models import (
    BackorderLine,
    InventoryLevel,
    NotifySubscription,
    Order,
    OrderLine,
    Shop,
    StoreLocation,
    Variant,
    VariantBadge,
)
from plugin.models.notify import WAITING
from plugin.services import admin_text, catalog, ledger
from plugin.services.badging import decide_for_variant
from plugin.services.shop_time import shop_today
from plugin.services.variant_timeline import Entry, parse_cursor, timeline_page

# Lines and sign-ups listed (oldest first); the counts are always whole.
LIST_CAP = 100


def find_variant(session: Session, shop: Shop, variant_id: int) -> Variant | None:
    """The variant, only if it is this shop's."""
    return session.scalar(
        select(Variant).where(Variant.id == variant_id, Variant.shop_id == shop.id)
    )


# -- the page ------------------------------------------------------------------------------------


@dataclass
class StockRow:
    location_id: str
    name: str | None
    available: int
    counted: bool
    updated_at: str | None


@dataclass
class WaitingLine:
    id: int
    order_name: str
    customer_email: str | None
    customer_name: str | None
    ordered_at: str | None
    status: str
    open: int
    allocated: int
    eta: date | None


@dataclass
class Subscriber:
    id: int
    email: str
    status: str
    signed_up_at: str | None


@dataclass
class VariantPage:
    variant: Variant
    product_title: str
    badge: VariantBadge | None
    # What the engine would say now (when no badge was decided yet, or to show the reason).
    reason: str
    stock: list[StockRow]
    total: int
    lines: list[WaitingLine]
    lines_count: int
    subscribers: list[Subscriber]
    subscribers_count: int
    timeline: list[Entry] = field(default_factory=list)
    earlier: str | None = None  # the cursor of the next (older) page, if any


def variant_page(
    session: Session, shop: Shop, variant: Variant, before: str | None = None
) -> VariantPage:
    badge = session.get(VariantBadge, variant.id)
    reason = badge.reason if badge is not None and badge.reason else ""
    if not reason:
        reason = decide_for_variant(session, shop, variant, shop_today(shop.timezone)).reason
    lines, lines_count = _waiting_lines(session, shop, variant)
    subscribers, subscribers_count = _subscribers(session, shop, variant)
    timeline, earlier = timeline_page(session, shop, variant, parse_cursor(before))
    return VariantPage(
        variant=variant,
        product_title=variant.product.title if variant.product else "",
        badge=badge,
        reason=reason,
        stock=_stock(session, shop, variant),
        total=variant.inventory_total,
        lines=lines,
        lines_count=lines_count,
        subscribers=subscribers,
        subscribers_count=subscribers_count,
        timeline=timeline,
        earlier=earlier,
    )


def _stock(session: Session, shop: Shop, variant: Variant) -> list[StockRow]:
    chosen = catalog.counted_locations(shop.settings)
    rows = session.execute(
        select(InventoryLevel, StoreLocation.name)
        .outerjoin(
            StoreLocation,
            (StoreLocation.shop_id == InventoryLevel.shop_id)
            & (StoreLocation.location_id == InventoryLevel.location_id),
        )
        .where(InventoryLevel.variant_id == variant.id)
    ).all()
    stock = [
        StockRow(
            location_id=level.location_id,
            name=name,
            available=level.available,
            counted=chosen is None or level.location_id in chosen,
            updated_at=admin_text.moment(level.source_updated_at, shop.timezone),
        )
        for level, name in rows
    ]
    return sorted(stock, key=lambda r: (len(r.location_id), r.location_id))


def _waiting_lines(session: Session, shop: Shop, variant: Variant) -> tuple[list[WaitingLine], int]:
    where = (
        BackorderLine.shop_id == shop.id,
        BackorderLine.variant_id == variant.id,
        BackorderLine.status.in_(ledger.OWING),
    )
    count = session.scalar(select(func.count()).select_from(BackorderLine).where(*where)) or 0
    rows = session.execute(
        select(BackorderLine, Order)
        .join(OrderLine, OrderLine.id == BackorderLine.order_line_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(*where)
        .order_by(BackorderLine.ordered_at, BackorderLine.id)
        .limit(LIST_CAP)
    ).all()
    badge = session.get(VariantBadge, variant.id)
    return [
        WaitingLine(
            id=line.id,
            order_name=order.name or f"#{order.platform_id}",
            customer_email=order.customer_email,
            customer_name=order.customer_name,
            ordered_at=admin_text.moment(line.ordered_at, shop.timezone),
            status=line.status.value,
            open=line.open_quantity,
            allocated=line.allocated_quantity,
            eta=line.eta_override or (badge.eta if badge is not None else None),
        )
        for line, order in rows
    ], count


def _subscribers(session: Session, shop: Shop, variant: Variant) -> tuple[list[Subscriber], int]:
    where = (
        NotifySubscription.shop_id == shop.id,
        NotifySubscription.variant_id == variant.id,
        NotifySubscription.status.in_(WAITING),
    )
    count = session.scalar(select(func.count()).select_from(NotifySubscription).where(*where))
    rows = session.scalars(
        select(NotifySubscription)
        .where(*where)
        .order_by(NotifySubscription.created_at, NotifySubscription.id)
        .limit(LIST_CAP)
    )
    return [
        Subscriber(
            id=s.id,
            email=s.email,
            status=s.status.value,
            signed_up_at=admin_text.moment(s.created_at, shop.timezone),
        )
        for s in rows
    ], count or 0


# -- the timeline --------------------------------------------------------------------------------
