"""A store that installed the app, and the merchant's backorder settings for it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.models.base import Base, str_enum, utcnow


class Platform(enum.StrEnum):
    SHOPIFY = "shopify"
    BIGCOMMERCE = "bigcommerce"
    SANDBOX = "sandbox"


class InstallStatus(enum.StrEnum):
    INSTALLED = "installed"
    NEEDS_REAUTH = "needs_reauth"
    UNINSTALLED = "uninstalled"


class Shop(Base):
    __tablename__ = "shops"
    __table_args__ = (UniqueConstraint("platform", "domain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[Platform] = mapped_column(str_enum(Platform))
    # Shopify: the myshopify.com domain; BigCommerce: the store hash; sandbox: a local name.
    domain: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[InstallStatus] = mapped_column(
        str_enum(InstallStatus), default=InstallStatus.INSTALLED
    )
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Fernet tokens (see plugin.services.tokens); never the plain token.
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None]
    refresh_token_expires_at: Mapped[datetime | None]
    scopes: Mapped[str] = mapped_column(Text, default="")
    # Platform-specific install facts (BigCommerce webhook secret, Shopify shop id, ...).
    platform_data: Mapped[dict] = mapped_column(JSON, default=dict)
    installed_at: Mapped[datetime] = mapped_column(default=utcnow)
    uninstalled_at: Mapped[datetime | None]

    settings: Mapped[StoreSettings] = relationship(
        back_populates="shop", uselist=False, cascade="all, delete-orphan"
    )

    @property
    def is_active(self) -> bool:
        return self.status == InstallStatus.INSTALLED


class StoreSettings(Base):
    __tablename__ = "store_settings"

    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(default=True)
    # Sell past zero even where the platform's own policy says stop (the connector flips it).
    auto_backorder: Mapped[bool] = mapped_column(default=False)
    label_in_stock: Mapped[str] = mapped_column(String(80), default="In stock")
    label_backorder: Mapped[str] = mapped_column(String(120), default="Backorder, ships by {eta}")
    label_out_of_stock: Mapped[str] = mapped_column(String(80), default="Out of stock")
    color_in_stock: Mapped[str] = mapped_column(String(7), default="#1a7f37")
    color_backorder: Mapped[str] = mapped_column(String(7), default="#9a6700")
    color_out_of_stock: Mapped[str] = mapped_column(String(7), default="#cf222e")
    default_lead_days: Mapped[int] = mapped_column(default=14)
    business_days: Mapped[bool] = mapped_column(default=False)
    # Location ids whose stock counts towards the badge; None means every location.
    location_ids: Mapped[list[str] | None] = mapped_column(JSON)
    email_backorder_confirmation: Mapped[bool] = mapped_column(default=True)
    email_eta_changed: Mapped[bool] = mapped_column(default=True)
    email_back_in_stock: Mapped[bool] = mapped_column(default=True)
    email_reply_to: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    shop: Mapped[Shop] = relationship(back_populates="settings")


__all__ = ["InstallStatus", "Platform", "Shop", "StoreSettings"]
