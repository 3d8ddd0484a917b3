"""Where the app builds each platform's adapters, handing them what they need.

Connectors and webhook sources know no Flask, no ORM and nothing of the app; this module is the
one place that gives them the shop's credentials, the shared cache and the settings values
they use, so adding a platform means adding its adapters and a line here.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session

from connectors.base import Connector, ConnectorError, TokenCallbacks
from domain.platforms import Platform
from plugin.extensions import shared_cache
from plugin.models import Shop
from plugin.services.tokens import vault
from plugin.settings import Settings
from webhooks.source import WebhookSource


def _settings() -> Settings:
    return current_app.extensions["settings"]


def connector_for(shop: Shop, session: Session) -> Connector:
    """The shop's adapter for one unit of work (it keeps what it read until dropped)."""
    settings = _settings()
    if shop.platform == Platform.SANDBOX:
        from connectors.sandbox import SandboxConnector
        from plugin.services.sandbox_store import SandboxStoreApi

        return SandboxConnector(SandboxStoreApi(session, shop))
    if shop.platform == Platform.SHOPIFY:
        from connectors.shopify.connector import ShopifyConnector
        from connectors.shopify.graphql import ShopifyGraphQL, endpoint_for
        from plugin.services.shopify_install import credentials

        endpoint = endpoint_for(shop.domain, settings.shopify_api_base_override)
        return ShopifyConnector(
            ShopifyGraphQL(shop.domain, credentials(session, shop), endpoint=endpoint)
        )
    if shop.platform == Platform.BIGCOMMERCE:
        from connectors.bigcommerce.connector import BigCommerceConnector
        from plugin.services.shops import webhook_secret

        if not shop.access_token_encrypted:
            raise ConnectorError(f"store {shop.domain} has no access token")
        token = vault().decrypt(shop.access_token_encrypted)
        return BigCommerceConnector(
            shop.domain,
            TokenCallbacks(access_token=lambda: token),
            shared_cache.cache,
            app_url=settings.app_url,
            webhook_secret=webhook_secret(shop),
            api_base_override=settings.bigcommerce_api_base_override,
            client_id=settings.bigcommerce_client_id,
        )
    raise ConnectorError(f"no connector for platform {shop.platform!r} yet")


def webhook_source(platform: str) -> WebhookSource:
    """The platform's webhook source, built once per app with the app's secrets."""
    sources = current_app.extensions.get("webhook_sources")
    if sources is None:
        from webhooks.bigcommerce import BigCommerceWebhooks
        from webhooks.sandbox import SandboxWebhooks
        from webhooks.shopify import ShopifyWebhooks

        settings = _settings()
        sources = current_app.extensions["webhook_sources"] = {
            Platform.SANDBOX.value: SandboxWebhooks(settings.secret_key),
            Platform.SHOPIFY.value: ShopifyWebhooks(settings.shopify_client_secret),
            Platform.BIGCOMMERCE.value: BigCommerceWebhooks(settings.bigcommerce_client_secret),
        }
    try:
        return sources[platform]
    except KeyError:
        raise LookupError(f"no webhook source for platform {platform!r}") from None


def refresh_expiring_tokens() -> int:
    """Refresh every installed shop's access token that expires soon, on every platform whose
    tokens expire (Shopify's expiring offline tokens; BigCommerce's do not expire)."""
    from plugin.services.shopify_install import refresh_expiring_tokens as refresh_shopify

    return refresh_shopify()


def customer_token_verifier(shop: Shop):
    """How a storefront proves a signed-in shopper, per platform: a callable taking the token
    the page sent and returning (customer id, their email), or None when it does not verify.
    BigCommerce's `/customer/current.jwt`; other platforms send none (Shopify's app proxy signs
    the customer id itself)."""
    if shop.platform != Platform.BIGCOMMERCE:
        return lambda _token: None
    from webhooks.bigcommerce_customer import CustomerTokenRefused, verify

    settings = _settings()

    def check(token: str):
        try:
            customer = verify(
                token,
                settings.bigcommerce_client_id,
                settings.bigcommerce_client_secret,
                shop.domain,
            )
        except CustomerTokenRefused:
            return None
        return customer.customer_id, customer.email

    return check
