"""Notify-me: shoppers waiting for a variant to come back, and the restocks that alert them.

A subscription is also the evidence of the shopper's consent (GDPR Art. 7(1)): the exact text
they agreed to and its version, the form and page it came from, when, and a truncated IP and
user agent. It is deleted, not anonymised, when the customer or the shop is redacted.

A restock is a row before it is a job: the clock finds an open restock whose next batch is due
even if the queue lost the job, and the row's lock and `next_batch_at` make a retried or
duplicated job alert nobody twice.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from plugin.models.base import Base, str_enum, utcnow


class SubscriptionStatus(enum.StrEnum):
    PENDING = "pending"  # double opt-in: waiting for the shopper to confirm; never alerted
    ACTIVE = "active"  # waiting for the variant to come back
    ALERTED = "alerted"  # told once; done
    UNSUBSCRIBED = "unsubscribed"


# The statuses that hold a place in the queue: one per address and variant.
WAITING = (SubscriptionStatus.PENDING, SubscriptionStatus.ACTIVE)
_WAITING_SQL = "status IN ('pending', 'active')"


class NotifySubscription(Base):
    __tablename__ = "notify_subscriptions"
    __table_args__ = (
        # One address has one waiting subscription per variant.
        Index(
            "uq_notify_subscriptions_waiting",
            "shop_id",
            "variant_id",
            "email",
            unique=True,
            postgresql_where=text(_WAITING_SQL),
            sqlite_where=text(_WAITING_SQL),
        ),
        # The alert batches take them in sign-up order.
        Index("ix_notify_subscriptions_queue", "variant_id", "status", "created_at", "id"),
        Index("ix_notify_subscriptions_shop_email", "shop_id", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))  # normalised, lower-case
    locale: Mapped[str] = mapped_column(String(35), default="en")
    status: Mapped[SubscriptionStatus] = mapped_column(
        str_enum(SubscriptionStatus), default=SubscriptionStatus.ACTIVE
    )
    # Opaque, random: the confirm and unsubscribe links carry it, nothing else identifies them.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    # The consent evidence.
    consent_text: Mapped[str] = mapped_column(Text)
    consent_version: Mapped[str] = mapped_column(String(32))
    form: Mapped[str] = mapped_column(
        String(32)
    )  # which storefront form: a theme block, a script, ...
    page_url: Mapped[str | None] = mapped_column(Text)
    ip_truncated: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    # The platform's customer id when the shopper was signed in (verified by the platform).
    customer_id: Mapped[str | None] = mapped_column(String(64))
    double_opt_in: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    alerted_at: Mapped[datetime | None]
    restock_id: Mapped[int | None] = mapped_column(
        ForeignKey("restocks.id", ondelete="SET NULL"), index=True
    )
    unsubscribed_at: Mapped[datetime | None]


class RestockStatus(enum.StrEnum):
    OPEN = "open"  # alerting in batches
    SOLD_OUT = "sold_out"  # the variant sold out again: the rest wait for the next restock
    DONE = "done"  # everyone waiting was alerted


class Restock(Base):
    __tablename__ = "restocks"
    __table_args__ = (
        # At most one open restock per variant.
        Index(
            "uq_restocks_open",
            "variant_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index("ix_restocks_status_next_batch_at", "status", "next_batch_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    status: Mapped[RestockStatus] = mapped_column(
        str_enum(RestockStatus), default=RestockStatus.OPEN
    )
    units_at_start: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_batch_at: Mapped[datetime] = mapped_column(default=utcnow)
    batches: Mapped[int] = mapped_column(default=0)
    # A batch larger than one job's chunk is alerted over several jobs: how many of the
    # current batch are still to be told, and how many jobs have run (each job's own id).
    batch_remaining: Mapped[int] = mapped_column(default=0)
    steps: Mapped[int] = mapped_column(default=0)
    alerted: Mapped[int] = mapped_column(default=0)
    finished_at: Mapped[datetime | None]
