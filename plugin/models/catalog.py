"""The app's mirror of a store's catalogue: just what deciding a badge needs."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import DDL, ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.models.base import Base, utcnow


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("shop_id", "platform_id"),
        # The support desk finds a product by any part of its title: a trigram index on
        # PostgreSQL (pg_trgm), a plain one elsewhere.
        Index(
            "ix_products_title_trgm",
            "title",
            postgresql_using="gin",
            postgresql_ops={"title": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    # Platform ids can exceed 2**53, so they are kept as text.
    platform_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255), default="")
    # When the platform last changed this product, per the newest event applied.
    source_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    variants: Mapped[list[Variant]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="Variant.id"
    )


class Variant(Base):
    __tablename__ = "variants"
    __table_args__ = (
        UniqueConstraint("shop_id", "platform_id"),
        Index("ix_variants_shop_inventory_item", "shop_id", "inventory_item_id"),
        # The support desk: a SKU or the start of one; a product's variants.
        Index(
            "ix_variants_shop_sku", "shop_id", "sku", postgresql_ops={"sku": "varchar_pattern_ops"}
        ),
        Index("ix_variants_product_id", "product_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    platform_id: Mapped[str] = mapped_column(String(64))
    inventory_item_id: Mapped[str | None] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(255), default="")
    tracked: Mapped[bool] = mapped_column(default=True)
    # The merchant's own platform policy: may this variant be sold past zero?
    sells_past_zero: Mapped[bool] = mapped_column(default=False)
    # A selling policy the app wrote over the merchant's ("CONTINUE"/"DENY"), and the merchant's
    # own at that moment, so the app can put it back and knows its own change when the
    # platform echoes it.
    app_policy: Mapped[str | None] = mapped_column(String(16))
    merchant_policy: Mapped[str | None] = mapped_column(String(16))
    # Sum over the locations the store counts; kept in step with inventory_levels.
    inventory_total: Mapped[int] = mapped_column(default=0)
    # A platform's native backorder facts, which replace the app's own when set.
    native_backorder_limit: Mapped[int | None]
    native_backordered: Mapped[int | None]
    # The merchant's per-variant overrides.
    eta_override: Mapped[date | None]
    lead_days_override: Mapped[int | None]
    backorder_limit: Mapped[int | None]
    source_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    product: Mapped[Product] = relationship(back_populates="variants")
    levels: Mapped[list[InventoryLevel]] = relationship(
        back_populates="variant",
        cascade="all, delete-orphan",
        order_by="InventoryLevel.location_id",
    )


class InventoryLevel(Base):
    """Stock of one variant at one location, with the platform time of the last applied change.

    Per-location timestamps let a late, older event be refused for the location it speaks of
    without refusing a newer event for another location.
    """

    __tablename__ = "inventory_levels"
    __table_args__ = (UniqueConstraint("variant_id", "location_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    location_id: Mapped[str] = mapped_column(String(64))
    available: Mapped[int] = mapped_column(default=0)
    source_updated_at: Mapped[datetime | None]

    variant: Mapped[Variant] = relationship(back_populates="levels")


# The trigram operator class needs its extension before the index is made (create_all in tests;
# the migration does the same).
event.listen(
    Product.__table__,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)
