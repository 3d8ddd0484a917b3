"""Builders for the Shopify install/embedded tests: signed queries, session tokens, token
endpoint answers (shops come from tests/factories.py)."""

from __future__ import annotations

import hashlib
import hmac
import time
import warnings
from urllib.parse import quote, urlencode

import jwt
from flask import current_app
from jwt.warnings import InsecureKeyLengthWarning

TOKEN_URL = "https://{shop}/admin/oauth/access_token"


def sign_query(params: dict[str, str], secret: str) -> str:
    """A query string signed the way Shopify documents it (sorted k=v joined by &, hex)."""
    message = "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(params.items()))
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return urlencode({**params, "hmac": digest})


def signed_admin_query(shop: str, **extra: str) -> str:
    settings = current_app.extensions["settings"]
    params = {"shop": shop, "timestamp": str(int(time.time())), **extra}
    return sign_query(params, settings.shopify_client_secret)


def session_token(
    shop: str,
    *,
    secret: str | None = None,
    aud: str | list[str] | None = None,
    exp_in: int = 60,
    nbf_in: int = -5,
    dest: str | None = None,
) -> str:
    settings = current_app.extensions["settings"]
    now = int(time.time())
    claims = {
        "iss": f"https://{shop}/admin",
        "dest": dest or f"https://{shop}",
        "aud": aud or settings.shopify_client_id,
        "sub": "42",
        "exp": now + exp_in,
        "nbf": now + nbf_in,
        "iat": now + nbf_in,
        "jti": "f8912129-1af6-4cad-9ca3-76b0f7621087",
        "sid": "aaea182f2732d44c23057c0fea584021a4485b2bd25d3eb7fd349313ad24c685",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)  # test secrets are short
        return jwt.encode(claims, secret or settings.shopify_client_secret, algorithm="HS256")


def grant_body(access="shpat_new", refresh="shprt_new", expires_in=3600) -> dict:
    """Token endpoint answer for an expiring offline token, as Shopify documents it."""
    return {
        "access_token": access,
        "expires_in": expires_in,
        "refresh_token": refresh,
        "refresh_token_expires_in": 7776000,
        "scope": "read_products,write_products,read_inventory,read_orders,read_locations",
    }


def graphql_url(shop: str) -> str:
    return f"https://{shop}/admin/api/2025-01/graphql.json"


# Definitions read, three definitions created, the store and its languages, one catalogue
# page, the locations' names, one page of orders changed, then the storefront labels: read,
# their definition created, written.
FIRST_SYNC_CALLS = 12


def expect_first_sync(rsps, shop: str, products: list | None = None) -> None:
    """What follows an install: the badge metafield definitions the theme needs are created
    (none exist yet), the store's time zone and language are read, then the catalogue and the
    recent orders; here, a shop with no products and no orders yet."""
    rsps.post(graphql_url(shop), json={"data": {"metafieldDefinitions": {"nodes": []}}})
    for key in ("state", "label", "eta"):
        rsps.post(
            graphql_url(shop),
            json={
                "data": {
                    "metafieldDefinitionCreate": {
                        "createdDefinition": {
                            "id": f"gid://shopify/MetafieldDefinition/{key}",
                            "key": key,
                        },
                        "userErrors": [],
                    }
                }
            },
        )
    rsps.post(graphql_url(shop), json={"data": {"shop": STORE}})
    rsps.post(
        graphql_url(shop), json={"data": {"shopLocales": [{"locale": "en", "primary": True}]}}
    )
    rsps.post(
        graphql_url(shop),
        json={
            "data": {
                "productsCount": {"count": len(products or [])},
                "products": {
                    "pageInfo": {"hasNextPage": False, "endCursor": None},
                    "nodes": products or [],
                },
            },
            "extensions": {
                "cost": {
                    "requestedQueryCost": 10,
                    "actualQueryCost": 2,
                    "throttleStatus": {
                        "maximumAvailable": 2000.0,
                        "currentlyAvailable": 1998,
                        "restoreRate": 100.0,
                    },
                }
            },
        },
    )
    # The locations' names, read after the catalogue (none yet).
    rsps.post(graphql_url(shop), json={"data": {"locations": {"nodes": []}}})
    rsps.post(
        graphql_url(shop),
        json={
            "data": {"orders": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}}
        },
    )
    rsps.post(
        graphql_url(shop),
        json={
            "data": {
                "shop": {"id": "gid://shopify/Shop/548380009", "metafield": None},
                "metafieldDefinitions": {"nodes": []},
            }
        },
    )
    rsps.post(
        graphql_url(shop),
        json={
            "data": {
                "metafieldDefinitionCreate": {
                    "createdDefinition": {
                        "id": "gid://shopify/MetafieldDefinition/storefront",
                        "key": "storefront",
                    },
                    "userErrors": [],
                }
            }
        },
    )
    rsps.post(
        graphql_url(shop),
        json={"data": {"metafieldsSet": {"metafields": [], "userErrors": []}}},
    )


# The store as GraphQL's `shop` shows it to the app (BackorderStore).
STORE = {
    "name": "Cool Shop",
    "ianaTimezone": "America/Los_Angeles",
    "contactEmail": "hello@cool-shop.example",
    "billingAddress": {"countryCodeV2": "US"},
}
