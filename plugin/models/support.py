"""What support staff write down about a customer: internal notes, never shown to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from plugin.models.base import Base, utcnow


class CustomerNote(Base):
    __tablename__ = "customer_notes"
    __table_args__ = (Index("ix_customer_notes_shop_email", "shop_id", "customer_email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    # The customer's address as the orders carry it (lower case).
    customer_email: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    staff_user: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
