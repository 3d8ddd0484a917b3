"""The backorder ledger: every backordered unit of an order line, from order to delivery.

A line's backordered units move on as quantities: open (waiting for stock), allocated
(restocked units reserved for it, oldest orders first), fulfilled (shipped) or cancelled
(removed, refunded or cancelled before shipping). A line of 3 can have 2 allocated and 1 open.
Every change is a step in the line's own timeline, with what caused it; support staff and the
customer emails read that timeline.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.models.base import Base, str_enum, utcnow
from plugin.models.catalog import Variant
from plugin.models.orders import OrderLine


class BackorderStatus(enum.StrEnum):
    OPEN = "open"  # some units wait for stock
    ALLOCATED = "allocated"  # every unit not yet shipped is covered by restocked stock
    FULFILLED = "fulfilled"  # every backordered unit shipped
    CANCELLED = "cancelled"  # none left to ship: cancelled, removed or refunded first


class BackorderLine(Base):
    __tablename__ = "backorder_lines"
    __table_args__ = (
        Index("ix_backorder_lines_variant_status", "variant_id", "status"),
        # The support desk's KPIs over a period: lines ordered, and lines fulfilled, in it.
        Index("ix_backorder_lines_shop_ordered_at", "shop_id", "ordered_at"),
        Index("ix_backorder_lines_shop_fulfilled_at", "shop_id", "fulfilled_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    order_line_id: Mapped[int] = mapped_column(
        ForeignKey("order_lines.id", ondelete="CASCADE"), unique=True
    )
    # When the customer ordered: the queue's order.
    ordered_at: Mapped[datetime]
    # Units that went on backorder; open + allocated + fulfilled + cancelled add up to it.
    quantity: Mapped[int]
    open_quantity: Mapped[int] = mapped_column(default=0)
    allocated_quantity: Mapped[int] = mapped_column(default=0)
    fulfilled_quantity: Mapped[int] = mapped_column(default=0)
    cancelled_quantity: Mapped[int] = mapped_column(default=0)
    status: Mapped[BackorderStatus] = mapped_column(
        str_enum(BackorderStatus), default=BackorderStatus.OPEN
    )
    # When the line last reached each step.
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    allocated_at: Mapped[datetime | None]
    fulfilled_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The ship date the customer was first told (for the on-time rate), and a date support staff
    # set for this one line, with the reason the customer was given.
    promised_eta: Mapped[date | None]
    eta_override: Mapped[date | None]
    eta_reason: Mapped[str | None] = mapped_column(Text)

    variant: Mapped[Variant] = relationship()
    order_line: Mapped[OrderLine] = relationship()
    steps: Mapped[list[BackorderStep]] = relationship(
        back_populates="line", cascade="all, delete-orphan", order_by="BackorderStep.id"
    )

    @property
    def owed(self) -> int:
        """Units promised and not yet shipped: what counts towards the backorder limit."""
        return self.open_quantity + self.allocated_quantity

    @property
    def order(self):
        return self.order_line.order


class BackorderStep(Base):
    """One change to a line, in its timeline."""

    __tablename__ = "backorder_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    line_id: Mapped[int] = mapped_column(
        ForeignKey("backorder_lines.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # opened | allocated | released | fulfilled | cancelled
    kind: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int]
    # What caused it: a webhook topic, "reconcile", "settings", a merchant action.
    cause: Mapped[str] = mapped_column(String(64))
    webhook_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="SET NULL"), index=True
    )
    note: Mapped[str | None] = mapped_column(Text)
    # Who did it, when a person did (support staff: "<platform>:<user id>" or "sandbox");
    # None for what the app did by itself.
    staff_user: Mapped[str | None] = mapped_column(String(255))

    line: Mapped[BackorderLine] = relationship(back_populates="steps")
