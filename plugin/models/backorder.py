"""Units a customer ordered while the variant was on backorder."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.models.base import Base, str_enum, utcnow
from plugin.models.catalog import Variant


class BackorderStatus(enum.StrEnum):
    OPEN = "open"  # waiting for stock; counts towards the backorder limit
    ALLOCATED = "allocated"  # restocked units now cover it (oldest first)
    CANCELLED = "cancelled"


class BackorderLine(Base):
    __tablename__ = "backorder_lines"
    __table_args__ = (
        UniqueConstraint("shop_id", "order_id", "line_id"),
        Index("ix_backorder_lines_variant_status", "variant_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    order_id: Mapped[str] = mapped_column(String(64))
    line_id: Mapped[str] = mapped_column(String(64))
    order_name: Mapped[str] = mapped_column(String(64), default="")
    quantity: Mapped[int]
    customer_email: Mapped[str | None] = mapped_column(String(255))
    ordered_at: Mapped[datetime]
    status: Mapped[BackorderStatus] = mapped_column(
        str_enum(BackorderStatus), default=BackorderStatus.OPEN
    )
    allocated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    variant: Mapped[Variant] = relationship()
