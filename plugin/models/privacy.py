"""Privacy requests the app answered: the report a merchant downloads and hands on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from plugin.models.base import Base, utcnow


class DataRequestReport(Base):
    __tablename__ = "data_request_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    customer_email: Mapped[str | None] = mapped_column(String(255))
    order_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    webhook_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="SET NULL")
    )
    # Everything the app held about the person when asked: orders, lines and their timelines.
    report: Mapped[dict] = mapped_column(JSON, default=dict)
