"""The outbox: every customer email is a row before it is a message.

A mail is written in the same transaction as the change that causes it, under a unique
idempotency key (kind + line or order + the fact that caused it), so a retried job or a
redelivered webhook can never queue it twice; the `emails` queue then sends it, and a lost
queue is rebuilt from the pending rows.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.models.base import Base, str_enum, utcnow


class MailStatus(enum.StrEnum):
    PENDING = "pending"  # waiting to be sent (or for its quiet period to pass)
    SENDING = "sending"  # handed to the mail server; never sent again automatically
    SENT = "sent"
    BOUNCED = "bounced"  # the server refused the address for good
    SUPPRESSED = "suppressed"  # not sent: the address bounced before, or the kind is off


class OutboxMail(Base):
    __tablename__ = "outbox_mails"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_outbox_mails_status_send_after", "status", "send_after"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(255), index=True)
    locale: Mapped[str] = mapped_column(String(35), default="en")
    subject: Mapped[str] = mapped_column(Text)
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[MailStatus] = mapped_column(str_enum(MailStatus), default=MailStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(255))
    # Not before: a quiet period lets several changes become one mail.
    send_after: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # What it is about, for the line's timeline and privacy requests.
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), index=True
    )
    backorder_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("backorder_lines.id", ondelete="SET NULL"), index=True
    )
    # A notify-me alert or confirmation: which sign-up it answers.
    notify_subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("notify_subscriptions.id", ondelete="SET NULL"), index=True
    )
    # Subscription mail (RFC 8058): the HTTPS one-click unsubscribe link its headers carry.
    unsubscribe_url: Mapped[str | None] = mapped_column(Text)


class SuppressedAddress(Base):
    """An address the mail server refused for good: the shop's mails to it stop."""

    __tablename__ = "suppressed_addresses"
    __table_args__ = (UniqueConstraint("shop_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MailTemplate(Base):
    """A merchant's own wording of one kind of mail in one language (defaults otherwise)."""

    __tablename__ = "mail_templates"
    __table_args__ = (UniqueConstraint("shop_id", "kind", "locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(35))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
