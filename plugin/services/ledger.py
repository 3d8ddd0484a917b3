"""Keeping the backorder ledger: orders recorded from the platform's snapshots, and each
variant's lines settled against its stock (`plugin.services.restock.settle`).

Settling is idempotent and order-free: it recomputes a variant's lines from the platform's own
numbers, writes only what changed, and adds a timeline step per change with its cause. The
pipeline settles every variant an event touched (stock, product, order); reconciliation
settles every variant it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import events as ev
from plugin.models import (
    BackorderLine,
    BackorderStatus,
    BackorderStep,
    BadgeTransition,
    InventoryLevel,
    Order,
    OrderLine,
    Shop,
    Variant,
    VariantBadge,
    utcnow,
)
from plugin.services import batch_reads
from plugin.services.batch_reads import OWING, owed_units, stakes_query
from plugin.services.restock import LineLedger, LineStake, settle


@dataclass
class Cause:
    """What a ledger change is written down as."""

    name: str
    webhook_event_id: int | None = None
    note: str | None = None


@dataclass
class Settled:
    lines_changed: int = 0
    steps: list[BackorderStep] = field(default_factory=list)


def record_order(
    session: Session,
    shop: Shop,
    facts: ev.OrderFacts,
    resolve: Callable[[ev.VariantRef], Variant | None],
) -> list[Variant] | None:
    """Upsert the order and its lines from the platform's snapshot.

    Returns the variants whose lines changed, or None when the snapshot is older than the
    one already applied (events arrive out of order; the newest wins).
    """
    order = session.scalars(
        select(Order)
        .where(Order.shop_id == shop.id, Order.platform_id == facts.order_id)
        .with_for_update()
    ).first()
    if order is None:
        order = Order(shop_id=shop.id, platform_id=facts.order_id, placed_at=facts.placed_at)
        session.add(order)
    elif (
        facts.updated_at is not None
        and order.source_updated_at is not None
        and facts.updated_at < order.source_updated_at
    ):
        return None
    order.name = facts.name or order.name
    order.placed_at = facts.placed_at
    order.source_updated_at = facts.updated_at or order.source_updated_at
    order.cancelled_at = facts.cancelled_at
    # A redacted field stays as it was: the platform withholding it later deletes nothing.
    order.customer_email = facts.customer.email or order.customer_email
    order.customer_name = facts.customer.name or order.customer_name
    order.customer_locale = facts.customer.locale or order.customer_locale
    order.admin_url = facts.admin_url or order.admin_url
    session.flush()

    existing = {line.platform_id: line for line in order.lines}
    touched: list[Variant] = []
    for line in facts.lines:
        row = existing.get(line.line_id)
        variant = resolve(line.variant) if row is None else session.get(Variant, row.variant_id)
        if variant is None:
            continue  # a custom item, a tip, or a variant the store no longer has
        current = line.current_quantity if line.current_quantity is not None else line.quantity
        current = max(0, min(current, line.quantity))
        fulfilled = min(line.fulfilled_quantity, line.quantity)
        if facts.cancelled_at is not None:
            current = min(current, fulfilled)  # what shipped stays shipped; the rest is off
        values = {
            "ordered_quantity": line.quantity,
            "current_quantity": current,
            "fulfilled_quantity": fulfilled,
            "refunded_quantity": line.refunded_quantity,
        }
        if row is None:
            row = OrderLine(
                shop_id=shop.id,
                order_id=order.id,
                platform_id=line.line_id,
                variant_id=variant.id,
                **values,
            )
            session.add(row)
            touched.append(variant)
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            touched.append(variant)
    session.flush()
    return touched


def settle_variant(
    session: Session, variant: Variant, cause: Cause, now: datetime | None = None
) -> Settled:
    """Bring the variant's backorder lines in line with its stock and its orders' lines."""
    now = now or utcnow()
    result = Settled()
    if not variant.tracked:
        return result
    # Oldest order first, as the queue is served: the steps (and the mails they call for)
    # come out in that order whatever plan the database picks.
    reads = batch_reads.current(session, variant.shop_id)
    rows = reads.stakes.get(variant.id) if reads is not None else None
    if rows is None:
        rows = session.execute(stakes_query(OrderLine.variant_id == variant.id)).all()
    if not rows:
        return result
    if reads is not None:  # what follows may change its lines: read them again next time
        reads.forget(variant.id)
    stock_seen_at = session.scalar(
        select(func.max(InventoryLevel.source_updated_at)).where(
            InventoryLevel.variant_id == variant.id
        )
    )
    stakes = [
        LineStake(
            key=line.id,
            placed_at=order.placed_at,
            ordered=line.ordered_quantity,
            current=line.current_quantity,
            fulfilled=line.fulfilled_quantity,
            # A stock figure of unknown age is taken not to count the order yet.
            reflected=stock_seen_at is not None and order.placed_at <= stock_seen_at,
            stock_current=stock_seen_at is not None
            and (order.source_updated_at or order.placed_at) <= stock_seen_at,
            backordered=backorder.quantity if backorder is not None else 0,
        )
        for line, order, backorder in rows
    ]
    ledgers = settle(stakes, variant.inventory_total)
    for line, order, backorder in rows:
        ledger = ledgers[line.id]
        if backorder is None and ledger.backordered == 0:
            continue
        if backorder is None:
            backorder = BackorderLine(
                shop_id=variant.shop_id,
                variant_id=variant.id,
                order_line_id=line.id,
                ordered_at=order.placed_at,
                quantity=0,
                opened_at=now,
            )
            session.add(backorder)
        steps = _apply(backorder, ledger, now)
        if steps:
            result.lines_changed += 1
        for kind, quantity in steps:
            step = add_step(
                session,
                backorder,
                kind,
                quantity,
                cause.name,
                note=cause.note,
                at=now,
                webhook_event_id=cause.webhook_event_id,
            )
            result.steps.append(step)
    session.flush()
    return result


def add_step(
    session: Session,
    line: BackorderLine,
    kind: str,
    quantity: int,
    cause: str,
    *,
    note: str | None = None,
    at: datetime | None = None,
    webhook_event_id: int | None = None,
) -> BackorderStep:
    """Write one step in a line's timeline (the ledger's own, a mail, a customer's request)."""
    step = BackorderStep(
        shop_id=line.shop_id,
        line=line,
        at=at or utcnow(),
        kind=kind,
        quantity=quantity,
        cause=cause[:64],
        webhook_event_id=webhook_event_id,
        note=note,
    )
    session.add(step)
    return step


def eta_told_at_order(session: Session, line: BackorderLine) -> date | None:
    """The ship date the badge showed when the customer ordered (None: it showed none).

    The last badge change at or before the order; else what the first change after it changed
    from; else the badge as it still is. Read from the history, not from the badge now, so an
    order recorded late (a delayed or replayed webhook) is not credited with a later date."""
    before = session.execute(
        select(BadgeTransition.to_eta)
        .where(
            BadgeTransition.variant_id == line.variant_id,
            BadgeTransition.created_at <= line.ordered_at,
        )
        .order_by(BadgeTransition.created_at.desc(), BadgeTransition.id.desc())
        .limit(1)
    ).first()
    if before is not None:
        return before[0]
    after = session.execute(
        select(BadgeTransition.from_eta)
        .where(
            BadgeTransition.variant_id == line.variant_id,
            BadgeTransition.created_at > line.ordered_at,
        )
        .order_by(BadgeTransition.created_at, BadgeTransition.id)
        .limit(1)
    ).first()
    if after is not None:
        return after[0]
    badge = session.get(VariantBadge, line.variant_id)
    return badge.eta if badge is not None else None


def promise_etas(session: Session, steps: Iterable[BackorderStep]) -> None:
    """Write down, once, the ship date a line's customer was told when it first went on
    backorder (`eta_told_at_order`): the on-time rate and the Mail Order Rule's delay notices
    measure against it. A line's first opening is the step that opened all of its units; later
    openings, and later ETA moves, never change it. A line whose badge showed no date keeps
    none (the on-time rate leaves it out)."""
    first = {
        step.line.id: step.line
        for step in steps
        if step.kind == "opened"
        and step.line.promised_eta is None
        and step.quantity == step.line.quantity
    }
    for line in first.values():
        line.promised_eta = eta_told_at_order(session, line)


def _apply(line: BackorderLine, ledger: LineLedger, now: datetime) -> list[tuple[str, int]]:
    """Write the ledger's quantities on the line; the steps that took it there."""
    before = {
        "backordered": line.quantity or 0,
        "open": line.open_quantity or 0,
        "allocated": line.allocated_quantity or 0,
        "fulfilled": line.fulfilled_quantity or 0,
        "cancelled": line.cancelled_quantity or 0,
    }
    steps: list[tuple[str, int]] = []
    if ledger.backordered > before["backordered"]:
        steps.append(("opened", ledger.backordered - before["backordered"]))
    if ledger.allocated > before["allocated"]:
        steps.append(("allocated", ledger.allocated - before["allocated"]))
    elif ledger.allocated < before["allocated"] and ledger.open > before["open"]:
        # Stock fell again before shipping (a correction, a sale elsewhere): back in the queue.
        steps.append(("released", before["allocated"] - ledger.allocated))
    if ledger.fulfilled > before["fulfilled"]:
        steps.append(("fulfilled", ledger.fulfilled - before["fulfilled"]))
    if ledger.cancelled > before["cancelled"]:
        steps.append(("cancelled", ledger.cancelled - before["cancelled"]))

    line.quantity = ledger.backordered
    line.open_quantity = ledger.open
    line.allocated_quantity = ledger.allocated
    line.fulfilled_quantity = ledger.fulfilled
    line.cancelled_quantity = ledger.cancelled
    status = status_of(ledger)
    if status != line.status or steps:
        if status == BackorderStatus.OPEN and "opened" in dict(steps):
            line.opened_at = now
        if "allocated" in dict(steps):
            line.allocated_at = now
        if "fulfilled" in dict(steps):
            line.fulfilled_at = now
        if "cancelled" in dict(steps):
            line.cancelled_at = now
    line.status = status
    return steps


def status_of(ledger: LineLedger) -> BackorderStatus:
    if ledger.open:
        return BackorderStatus.OPEN
    if ledger.allocated:
        return BackorderStatus.ALLOCATED
    if ledger.fulfilled:
        return BackorderStatus.FULFILLED
    return BackorderStatus.CANCELLED


def units_owed(session: Session, variant: Variant) -> int:
    """Open and allocated units: what counts towards the variant's backorder limit."""
    reads = batch_reads.current(session, variant.shop_id)
    if reads is not None and variant.id in reads.owed:
        return reads.owed[variant.id]
    return session.scalar(
        select(owed_units()).where(
            BackorderLine.variant_id == variant.id, BackorderLine.status.in_(OWING)
        )
    )


def owing_lines(session: Session, variant_ids: Iterable[int]) -> list[BackorderLine]:
    """Lines still owed, oldest order first: the queue customers wait in."""
    ids = list(variant_ids)
    if not ids:
        return []
    return list(
        session.scalars(
            select(BackorderLine)
            .where(BackorderLine.variant_id.in_(ids), BackorderLine.status.in_(OWING))
            .order_by(BackorderLine.ordered_at, BackorderLine.id)
        )
    )


def variants_with_open_orders(session: Session, shop_id: int) -> set[int]:
    """Variants with unshipped order lines or lines still owed: the only ones stock can
    change the ledger of (one query, so reconciliation settles only those)."""
    unshipped = select(OrderLine.variant_id).where(
        OrderLine.shop_id == shop_id, OrderLine.current_quantity > OrderLine.fulfilled_quantity
    )
    owed = select(BackorderLine.variant_id).where(
        BackorderLine.shop_id == shop_id, BackorderLine.status.in_(OWING)
    )
    return set(session.scalars(unshipped.union(owed)))
