"""The sandbox store's own catalogue: the "platform" side, kept apart from the app's mirror.

The app never reads these tables while deciding a badge; it learns of them only through the
signed webhooks the sandbox sends, exactly as it would from a real platform.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.models.base import Base, utcnow


class SandboxProduct(Base):
    __tablename__ = "sandbox_products"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    variants: Mapped[list[SandboxVariant]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="SandboxVariant.id"
    )


class SandboxVariant(Base):
    __tablename__ = "sandbox_variants"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("sandbox_products.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(255))
    sku: Mapped[str] = mapped_column(String(255), default="")
    inventory: Mapped[int] = mapped_column(default=0)
    # The merchant's policy: "deny" or "continue" (sell past zero).
    policy: Mapped[str] = mapped_column(String(16), default="deny")
    # What the app last pushed, as a platform would store it in metafields.
    app_policy: Mapped[str | None] = mapped_column(String(16))
    badge_state: Mapped[str | None] = mapped_column(String(16))
    badge_label: Mapped[str | None] = mapped_column(String(255))
    badge_eta: Mapped[date | None]
    badge_pushed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    product: Mapped[SandboxProduct] = relationship(back_populates="variants")

    @property
    def effective_policy(self) -> str:
        return self.app_policy or self.policy


class SandboxOrder(Base):
    __tablename__ = "sandbox_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("sandbox_variants.id", ondelete="CASCADE"))
    quantity: Mapped[int]
    email: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The order's life in the store: units still on it (after removals and refunds), shipped
    # and refunded, and when it was cancelled or last changed.
    current_quantity: Mapped[int | None]
    shipped_quantity: Mapped[int] = mapped_column(default=0)
    refunded_quantity: Mapped[int] = mapped_column(default=0)
    cancelled_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
