"""The webhook inbox: every verified delivery is stored here before the platform gets its 200.

Modelled on saleor's pipeline: an event row per platform event, and an attempt row each time a
worker processes it, so a failure's history survives retries.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.models.base import Base, str_enum, utcnow


class InboxStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"  # raised; RQ retries it, and the attempts rows say why
    IGNORED = "ignored"  # a topic or shop the app has nothing to do with
    # Stored, but can never be processed (its payload cannot be translated): kept and shown on
    # the support pages, never retried by RQ or the sweeper.
    DEAD_LETTER = "dead_letter"


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("platform", "event_id"),
        # A shop's drain job takes its oldest pending event: by index, however long the history.
        Index(
            "ix_webhook_events_pending",
            "shop_id",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    # SET NULL: a shop/redact request deletes the shop but its own record stays as proof.
    shop_id: Mapped[int | None] = mapped_column(
        ForeignKey("shops.id", ondelete="SET NULL"), index=True
    )
    shop_domain: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(128))
    # The platform's id for the event, unique per platform: a second delivery is a duplicate.
    event_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    triggered_at: Mapped[datetime | None]
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[InboxStatus] = mapped_column(str_enum(InboxStatus), default=InboxStatus.PENDING)
    deliveries: Mapped[int] = mapped_column(default=1)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]
    # The platform order a delivery spoke of, so a privacy request finds its stored body.
    order_id: Mapped[str | None] = mapped_column(String(64))
    # Bodies with customer data are emptied once processed and past the retention period, or
    # when the customer's data is redacted; the row stays as the record of the delivery.
    body_purged_at: Mapped[datetime | None]

    attempt_log: Mapped[list[WebhookAttempt]] = relationship(
        back_populates="event", cascade="all, delete-orphan", order_by="WebhookAttempt.id"
    )


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(16), default="started")
    error: Mapped[str | None] = mapped_column(Text)

    event: Mapped[WebhookEvent] = relationship(back_populates="attempt_log")
