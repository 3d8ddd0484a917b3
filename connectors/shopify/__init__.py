"""Shopify behind `connectors.base.Connector`: GraphQL Admin API only.

`shopify_connector` wires the connector to the shop's tokens (connectors/shopify/tokens.py,
imported lazily) and to the API endpoint. The policy memory below records which variants' sell-
past-zero policy the app itself changed, so the app can restore the merchant's own policy later
and so its own change, echoed back by products/update, is not mistaken for the merchant's.
"""

from __future__ import annotations

import os

from sqlalchemy.orm import Session

from plugin.models import Shop

# Shop.platform_data key: {variant id: {"app": "CONTINUE"|"DENY", "merchant": "CONTINUE"|"DENY"}}
APP_POLICIES_KEY = "app_inventory_policies"


def shopify_connector(shop: Shop, session: Session):
    from flask import current_app

    from connectors.shopify.connector import ShopifyConnector
    from connectors.shopify.graphql import ENDPOINT_OVERRIDE_ENV, ShopifyGraphQL, endpoint_for

    settings = current_app.extensions["settings"]
    override = None if settings.is_production else os.environ.get(ENDPOINT_OVERRIDE_ENV)
    client = ShopifyGraphQL(
        shop.domain, token_provider(session, shop), endpoint=endpoint_for(shop.domain, override)
    )
    return ShopifyConnector(shop, client)


def token_provider(session: Session, shop: Shop):
    from connectors.shopify.graphql import TokenProvider

    def current() -> str:
        from connectors.shopify.tokens import access_token_for

        return access_token_for(session, shop)

    def refresh() -> str:
        from connectors.shopify.tokens import refresh_after_unauthorized

        return refresh_after_unauthorized(session, shop)

    def refused(reason: str) -> None:
        from connectors.shopify.tokens import mark_needs_reauthorisation

        mark_needs_reauthorisation(shop, reason)

    return TokenProvider(current=current, refresh_after_unauthorized=refresh, refused=refused)


def app_policies(shop: Shop | None) -> dict[str, dict[str, str]]:
    if shop is None:
        return {}
    return dict((shop.platform_data or {}).get(APP_POLICIES_KEY) or {})


def save_app_policies(shop: Shop, policies: dict[str, dict[str, str]]) -> None:
    # A new dict, so SQLAlchemy sees the JSON column change.
    shop.platform_data = {**(shop.platform_data or {}), APP_POLICIES_KEY: policies}


def merchant_sells_past_zero(shop: Shop | None, variant_id: str, store_continues: bool) -> bool:
    """The merchant's own choice, even while the store shows the policy the app enforces."""
    remembered = app_policies(shop).get(variant_id)
    store_policy = "CONTINUE" if store_continues else "DENY"
    if remembered and remembered.get("app") == store_policy:
        return remembered.get("merchant") == "CONTINUE"
    return store_continues
