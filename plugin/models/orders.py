"""Orders as the platform last described them, with their lines: what the ledger is kept from.

One row per platform order, upserted by its id; a snapshot older than the one applied is
refused, so events arriving out of order never roll an order back. The customer's contact is
kept here once (not on each line), so a privacy request finds and deletes it in one place.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.models.base import Base, utcnow


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "platform_id"),
        # The support desk's search: an order number, an address or the start of one.
        Index("ix_orders_shop_name", "shop_id", "name"),
        # The KPIs' ordered units of a period.
        Index("ix_orders_shop_placed_at", "shop_id", "placed_at"),
        Index(
            "ix_orders_shop_customer_email",
            "shop_id",
            "customer_email",
            postgresql_ops={"customer_email": "varchar_pattern_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    platform_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64), default="")
    placed_at: Mapped[datetime]
    # The platform's own time of the snapshot applied (its updated_at), to refuse older ones.
    source_updated_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    customer_email: Mapped[str | None] = mapped_column(String(255))
    customer_name: Mapped[str | None] = mapped_column(String(255))
    customer_locale: Mapped[str | None] = mapped_column(String(35))
    admin_url: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )

    @property
    def contact_missing(self) -> bool:
        """The platform withheld the customer's address (or the order has none): kept, flagged."""
        return not self.customer_email


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "platform_id"),
        Index("ix_order_lines_variant_id", "variant_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    platform_id: Mapped[str] = mapped_column(String(64))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    # Units as ordered, still on the order (after edits, removals, refunds before shipping and
    # cancellation), shipped and refunded.
    ordered_quantity: Mapped[int]
    current_quantity: Mapped[int]
    fulfilled_quantity: Mapped[int] = mapped_column(default=0)
    refunded_quantity: Mapped[int] = mapped_column(default=0)

    order: Mapped[Order] = relationship(back_populates="lines")
