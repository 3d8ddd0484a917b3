"""A store that installed the app, and the merchant's backorder settings for it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from domain.platforms import Platform
from plugin.models.base import Base, str_enum, utcnow


class InstallStatus(enum.StrEnum):
    INSTALLED = "installed"
    NEEDS_REAUTH = "needs_reauth"
    UNINSTALLED = "uninstalled"


class Shop(Base):
    __tablename__ = "shops"
    __table_args__ = (
        UniqueConstraint("platform", "domain"),
        # The public endpoints (badge API, notify-me) know a shop by its domain alone.
        Index("ix_shops_domain", "domain"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[Platform] = mapped_column(str_enum(Platform))
    # The platform's name for the store: its own domain, store hash or local name.
    domain: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[InstallStatus] = mapped_column(
        str_enum(InstallStatus), default=InstallStatus.INSTALLED
    )
    # Read from the platform at install and on each reconciliation (the merchant may override
    # the zone in the settings): ETAs are computed in it, business days skip its holidays.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str | None] = mapped_column(String(35))
    country: Mapped[str | None] = mapped_column(String(2))
    contact_email: Mapped[str | None] = mapped_column(String(255))
    # When the ledger last re-read the orders the platform changed (reconciliation).
    orders_synced_at: Mapped[datetime | None]
    # Fernet tokens (see plugin.services.tokens); never the plain token.
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None]
    refresh_token_expires_at: Mapped[datetime | None]
    scopes: Mapped[str] = mapped_column(Text, default="")
    # Why the platform stopped accepting the token, shown to the merchant until they approve the
    # app again.
    reauth_reason: Mapped[str | None] = mapped_column(Text)
    reauth_at: Mapped[datetime | None]
    # The platform's account behind the store, where it names one.
    platform_account_id: Mapped[str | None] = mapped_column(String(64))
    # The secret the app puts in the headers of the webhooks it registers (encrypted like the
    # tokens), and how the last registration went.
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    registered_at: Mapped[datetime | None]
    registration_error: Mapped[str | None] = mapped_column(Text)
    # The languages the store publishes its storefront in (read from the platform), primary
    # first: the badge labels are offered in each.
    published_locales: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Where the store's pages are served from ("https://shop.example"): the only origins the
    # public notify-me endpoint answers cross-origin (read from the platform).
    storefront_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The store counts backorders itself (its own limit and count replace the app's).
    native_backorders: Mapped[bool] = mapped_column(default=False)
    installed_at: Mapped[datetime] = mapped_column(default=utcnow)
    uninstalled_at: Mapped[datetime | None]
    settings: Mapped[StoreSettings] = relationship(
        back_populates="shop", uselist=False, cascade="all, delete-orphan"
    )
    users: Mapped[list[StoreUser]] = relationship(
        back_populates="shop", cascade="all, delete-orphan", order_by="StoreUser.id"
    )
    registrations: Mapped[list[StoreRegistration]] = relationship(
        back_populates="shop", cascade="all, delete-orphan", order_by="StoreRegistration.id"
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
    # The labels in other languages: {"fr": {"in_stock": ..., "backorder": ...}}; the three
    # columns above are the primary language's, and defaults fill what is missing.
    badge_labels: Mapped[dict] = mapped_column(JSON, default=dict)
    color_in_stock: Mapped[str] = mapped_column(String(7), default="#1a7f37")
    color_backorder: Mapped[str] = mapped_column(String(7), default="#9a6700")
    color_out_of_stock: Mapped[str] = mapped_column(String(7), default="#cf222e")
    default_lead_days: Mapped[int] = mapped_column(default=14)
    business_days: Mapped[bool] = mapped_column(default=False)
    # Dates the store ships nothing on, beyond weekends and its country's public holidays
    # (ISO dates, as the merchant entered them).
    closed_dates: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Location ids whose stock counts towards the badge; None means every location.
    location_ids: Mapped[list[str] | None] = mapped_column(JSON)
    email_backorder_confirmation: Mapped[bool] = mapped_column(default=True)
    email_eta_changed: Mapped[bool] = mapped_column(default=True)
    email_back_in_stock: Mapped[bool] = mapped_column(default=True)
    email_ships_soon: Mapped[bool] = mapped_column(default=True)
    email_delay_notice: Mapped[bool] = mapped_column(default=True)
    # Whether an ETA that moves earlier is worth a mail too.
    email_eta_earlier: Mapped[bool] = mapped_column(default=False)
    # Several ETA edits within this many minutes become one mail.
    email_quiet_minutes: Mapped[int] = mapped_column(default=10)
    email_reply_to: Mapped[str | None] = mapped_column(String(255))
    # A customer's cancel request (from the link in a mail) is carried out on the platform too,
    # not only recorded for the merchant.
    customer_cancel_on_platform: Mapped[bool] = mapped_column(default=False)
    # The shop's postal address, printed in every mail's footer.
    postal_address: Mapped[str | None] = mapped_column(Text)
    # Notify me (back-in-stock sign-ups).
    notify_enabled: Mapped[bool] = mapped_column(default=True)
    # Offer the form on backorder too, not only when out of stock.
    notify_on_backorder: Mapped[bool] = mapped_column(default=False)
    # None: decided by the store's country (on in the EU and EEA).
    notify_double_opt_in: Mapped[bool | None]
    # At most this many subscribers alerted per unit in stock, per batch.
    notify_rate_per_unit: Mapped[int] = mapped_column(default=1)
    notify_batch_minutes: Mapped[int] = mapped_column(default=15)
    # Say in the alert how many are left.
    notify_show_stock: Mapped[bool] = mapped_column(default=False)
    # The merchant's wording per language: {"fr": {"heading": ..., "consent": ...}}; the
    # defaults fill what is missing.
    notify_texts: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    shop: Mapped[Shop] = relationship(back_populates="settings")


class StoreUser(Base):
    """A staff user of a multi-user store, and whether they may open the app.

    `admitted_at` is set while the user may use the app (installed it, or opened it through a
    verified load); `removed_at` when the owner revoked them: a load signed before then is
    refused.
    """

    __tablename__ = "store_users"
    __table_args__ = (UniqueConstraint("shop_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(255), default="")
    locale: Mapped[str | None] = mapped_column(String(35))
    is_owner: Mapped[bool] = mapped_column(default=False)
    admitted_at: Mapped[datetime | None]
    removed_at: Mapped[datetime | None]

    shop: Mapped[Shop] = relationship(back_populates="users")

    @property
    def has_access(self) -> bool:
        return self.admitted_at is not None and self.removed_at is None


class StoreRegistration(Base):
    """Something the app registered on the store: a webhook subscription or a script."""

    __tablename__ = "store_registrations"
    __table_args__ = (UniqueConstraint("shop_id", "kind", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "webhook" | "script"
    # The webhook topic, or the script's name.
    name: Mapped[str] = mapped_column(String(128))
    remote_id: Mapped[str | None] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)

    shop: Mapped[Shop] = relationship(back_populates="registrations")


class StoreLocation(Base):
    """A stock location the store has, as seen in the stock figures it reports."""

    __tablename__ = "store_locations"
    __table_args__ = (UniqueConstraint("shop_id", "location_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    location_id: Mapped[str] = mapped_column(String(64))
    # The name the merchant gave it on the platform ("Main warehouse"), where known.
    name: Mapped[str | None] = mapped_column(String(255))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = [
    "InstallStatus",
    "Platform",
    "Shop",
    "StoreLocation",
    "StoreRegistration",
    "StoreSettings",
    "StoreUser",
]


class BadgeGeneration(Base):
    """Bumped in the same transaction as any change to what the storefront badge API answers
    for a shop (plugin/services/badge_cache.py): a cached answer is keyed by it.

    A table of its own, not a column of `shops`: the bump is a transaction's last statement,
    and nothing else ever locks these rows, so it cannot deadlock with a transaction that
    updated the shop row early (a token refresh, a reconciliation) and then wants a badge row
    the committing one holds. A shop without a row is at generation 0."""

    __tablename__ = "badge_generations"

    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    generation: Mapped[int] = mapped_column(default=0, server_default="0")
