"""Verifying a BigCommerce storefront's current-customer JWT.

A Stencil page asks its own store for `/customer/current.jwt?app_client_id=<id>`; the store
answers (for a signed-in shopper only) with a JWT signed HS256 with the app's client secret,
holding `customer{id, email, group_id}` and the `store_hash`, valid for 15 minutes. The script
posts it to the app, which verifies it here: a valid token proves who the shopper is on that
store, so the address they sign up with may be theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

LEEWAY_S = 30


class CustomerTokenRefused(ValueError):
    pass


@dataclass(frozen=True)
class StoreCustomer:
    customer_id: str
    email: str
    store_hash: str


def verify(token: str, client_id: str, client_secret: str, store_hash: str) -> StoreCustomer:
    if not token or len(token) > 4096:
        raise CustomerTokenRefused("no customer token")
    try:
        claims = jwt.decode(
            token,
            client_secret,
            algorithms=["HS256"],
            options={"require": ["exp", "iat"], "verify_aud": False},
            leeway=LEEWAY_S,
        )
    except jwt.PyJWTError as exc:
        raise CustomerTokenRefused(f"customer token refused: {exc}") from exc
    # Whichever of these the token carries must name this app.
    for claim in ("aud", "application_id"):
        if claim in claims and str(claims[claim]) != client_id:
            raise CustomerTokenRefused(f"the token was issued to another app ({claim})")
    customer = claims.get("customer")
    if not isinstance(customer, dict) or customer.get("id") in (None, ""):
        raise CustomerTokenRefused("the token names no customer")
    if str(claims.get("store_hash", "")) != store_hash:
        raise CustomerTokenRefused("the token belongs to another store")
    return StoreCustomer(
        customer_id=str(customer["id"])[:64],
        email=str(customer.get("email") or "")[:254],
        store_hash=store_hash,
    )
