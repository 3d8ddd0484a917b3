"""One adapter per platform behind `connectors.base.Connector`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from connectors.base import BadgePush, CatalogPage, Connector, ConnectorError
from plugin.models import Platform, Shop

__all__ = ["BadgePush", "CatalogPage", "Connector", "ConnectorError", "connector_for"]


def connector_for(shop: Shop, session: Session) -> Connector:
    if shop.platform == Platform.SANDBOX:
        from connectors.sandbox import SandboxConnector

        return SandboxConnector(shop, session)
    if shop.platform == Platform.SHOPIFY:
        from connectors.shopify import shopify_connector

        return shopify_connector(shop, session)
    if shop.platform == Platform.BIGCOMMERCE:
        from connectors.bigcommerce.connector import BigCommerceConnector

        return BigCommerceConnector(shop, session)
    raise ConnectorError(f"no connector for platform {shop.platform!r} yet")


def refresh_expiring_tokens() -> int:
    """Refresh every installed shop's access token that expires soon, on every platform whose
    tokens expire (Shopify's expiring offline tokens; BigCommerce's do not expire)."""
    from connectors.shopify.tokens import refresh_expiring_tokens as refresh_shopify

    return refresh_shopify()
