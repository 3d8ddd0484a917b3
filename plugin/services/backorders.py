"""Backorder lines: recorded when an order hits a backordered variant, released by restocks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import BackorderLine, BackorderStatus, BadgeKind, Variant, VariantBadge
from plugin.services.restock import lines_covered_by_stock


def record_backorder_line(
    session: Session,
    variant: Variant,
    *,
    order_id: str,
    line_id: str,
    order_name: str,
    quantity: int,
    customer_email: str | None,
    ordered_at: datetime,
) -> BackorderLine | None:
    """Record the line if the variant is on backorder now; a replayed order adds nothing."""
    badge = session.get(VariantBadge, variant.id)
    if badge is None or badge.state != BadgeKind.BACKORDER or quantity <= 0:
        return None
    existing = session.scalars(
        select(BackorderLine).where(
            BackorderLine.shop_id == variant.shop_id,
            BackorderLine.order_id == order_id,
            BackorderLine.line_id == line_id,
        )
    ).first()
    if existing is not None:
        return None
    line = BackorderLine(
        shop_id=variant.shop_id,
        variant_id=variant.id,
        order_id=order_id,
        line_id=line_id,
        order_name=order_name,
        quantity=quantity,
        customer_email=customer_email,
        ordered_at=ordered_at,
        status=BackorderStatus.OPEN,
    )
    session.add(line)
    session.flush()
    return line


def allocate_restocked(session: Session, variant: Variant, now: datetime) -> list[BackorderLine]:
    """Mark the open lines that the variant's stock now covers, oldest order first."""
    open_lines = list(
        session.scalars(
            select(BackorderLine)
            .where(
                BackorderLine.variant_id == variant.id,
                BackorderLine.status == BackorderStatus.OPEN,
            )
            .order_by(BackorderLine.ordered_at, BackorderLine.id)
        )
    )
    if not open_lines:
        return []
    covered = set(
        lines_covered_by_stock([(ln.id, ln.quantity) for ln in open_lines], variant.inventory_total)
    )
    allocated = [ln for ln in open_lines if ln.id in covered]
    for line in allocated:
        line.status = BackorderStatus.ALLOCATED
        line.allocated_at = now
    return allocated
