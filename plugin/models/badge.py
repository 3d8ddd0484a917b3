"""Each variant's current badge, and the audit trail of how it got there."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from domain.badges import BadgeKind
from plugin.models.base import Base, str_enum, utcnow
from plugin.models.catalog import Variant

BADGE_KIND = str_enum(BadgeKind)


class VariantBadge(Base):
    __tablename__ = "variant_badges"
    __table_args__ = (Index("ix_variant_badges_shop_pending", "shop_id", "pushed_version"),)

    variant_id: Mapped[int] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True
    )
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    state: Mapped[BadgeKind] = mapped_column(BADGE_KIND)
    label: Mapped[str] = mapped_column(String(255), default="")
    eta: Mapped[date | None]
    reason: Mapped[str] = mapped_column(String(255), default="")
    # Platform policy the app wants enforced ("continue"/"deny"), None to leave the merchant's.
    enforced_policy: Mapped[str | None] = mapped_column(String(16))
    # Bumped on every change; a push records the version it delivered, so a burst of changes
    # to one variant coalesces into one write of the latest state.
    version: Mapped[int] = mapped_column(default=1)
    pushed_version: Mapped[int] = mapped_column(default=0)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    pushed_at: Mapped[datetime | None]

    variant: Mapped[Variant] = relationship()

    @property
    def push_pending(self) -> bool:
        return self.pushed_version < self.version


class BadgeTransition(Base):
    __tablename__ = "badge_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[BadgeKind | None] = mapped_column(BADGE_KIND)
    to_state: Mapped[BadgeKind] = mapped_column(BADGE_KIND)
    from_eta: Mapped[date | None]
    to_eta: Mapped[date | None]
    label: Mapped[str] = mapped_column(String(255), default="")
    reason: Mapped[str] = mapped_column(String(255), default="")
    # What caused it: a webhook event, or a merchant action / reconciliation (cause names it).
    webhook_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="SET NULL"), index=True
    )
    cause: Mapped[str] = mapped_column(String(64), default="webhook")
    # Who asked, when a person did (support's "heal now"): as BackorderStep.staff_user.
    staff_user: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BadgePushRecord(Base):
    """One delivery of a variant's badge to the store, or a failed try: the "pushed to the
    store" step of a variant's timeline."""

    __tablename__ = "badge_push_records"
    __table_args__ = (Index("ix_badge_push_records_variant", "variant_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    version: Mapped[int]
    state: Mapped[BadgeKind] = mapped_column(BADGE_KIND)
    eta: Mapped[date | None]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # pushed | failed
    outcome: Mapped[str] = mapped_column(String(16), default="pushed")
    error: Mapped[str | None] = mapped_column(Text)
