"""Shops: install, uninstall, the settings row every shop has, and the shop's webhook secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from plugin.models import InstallStatus, Platform, Shop, StoreSettings, utcnow
from plugin.services.tokens import TokenVault, vault


def find_shop(session: Session, platform: Platform | str, domain: str) -> Shop | None:
    return session.scalars(
        select(Shop).where(Shop.platform == Platform(platform), Shop.domain == domain)
    ).first()


_WEBHOOK_SECRET_QUERY = None


def shop_webhook_secret(conn: Connection, platform: Platform | str, domain: str) -> str | None:
    """The shop's webhook secret in plain text, for the webhook endpoint's hot path: reads only
    that column (not the whole Shop), on the ingest's own connection, with a prebuilt query."""
    global _WEBHOOK_SECRET_QUERY
    if _WEBHOOK_SECRET_QUERY is None:
        shops = Shop.__table__
        _WEBHOOK_SECRET_QUERY = (
            select(shops.c.webhook_secret_encrypted)
            .where(shops.c.platform == bindparam("platform", type_=shops.c.platform.type))
            .where(shops.c.domain == bindparam("domain", type_=shops.c.domain.type))
            .limit(1)
        )
    encrypted = conn.execute(
        _WEBHOOK_SECRET_QUERY, {"platform": Platform(platform), "domain": domain}
    ).scalar()
    return vault().decrypt(encrypted) if encrypted else None


def find_installed_shop_by_domain(session: Session, domain: str) -> Shop | None:
    """For public lookups (the badge API), where only the domain is known."""
    return session.scalars(
        select(Shop).where(Shop.domain == domain, Shop.status == InstallStatus.INSTALLED)
    ).first()


def install_shop(
    session: Session,
    vault: TokenVault,
    platform: Platform | str,
    domain: str,
    *,
    access_token: str | None,
    scopes: str = "",
    name: str = "",
    timezone: str | None = None,
    refresh_token: str | None = None,
    access_token_expires_at: datetime | None = None,
    refresh_token_expires_at: datetime | None = None,
) -> Shop:
    """Create or reinstall a shop; its settings survive a reinstall."""
    shop = find_shop(session, platform, domain)
    if shop is None:
        shop = Shop(platform=Platform(platform), domain=domain)
        session.add(shop)
    shop.status = InstallStatus.INSTALLED
    shop.installed_at = utcnow()
    shop.uninstalled_at = None
    shop.name = name or shop.name or domain
    if timezone:
        shop.timezone = timezone
    shop.scopes = scopes
    shop.access_token_encrypted = vault.encrypt(access_token) if access_token else None
    shop.refresh_token_encrypted = vault.encrypt(refresh_token) if refresh_token else None
    shop.access_token_expires_at = access_token_expires_at
    shop.refresh_token_expires_at = refresh_token_expires_at
    if shop.settings is None:
        shop.settings = StoreSettings()
    session.flush()
    return shop


def mark_uninstalled(shop: Shop, when: datetime | None = None) -> None:
    """Stops its jobs (they check the status) and makes its token unusable by deleting it."""
    shop.status = InstallStatus.UNINSTALLED
    shop.uninstalled_at = when or utcnow()
    shop.access_token_encrypted = None
    shop.refresh_token_encrypted = None
    shop.access_token_expires_at = None
    shop.refresh_token_expires_at = None


def webhook_secret(shop: Shop) -> str | None:
    """The secret the app registered in the shop's webhook headers, in plain text."""
    if not shop.webhook_secret_encrypted:
        return None
    return vault().decrypt(shop.webhook_secret_encrypted)


def set_webhook_secret(shop: Shop, secret: str) -> None:
    shop.webhook_secret_encrypted = vault().encrypt(secret)
