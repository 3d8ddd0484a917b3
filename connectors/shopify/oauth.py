"""Shopify's OAuth pieces: shop-domain check, query HMAC, and the token endpoint.

Everything that talks to `https://{shop}/admin/oauth/access_token` lives here: the token
exchange (managed install), the authorization-code grant (fallback install) and the refresh of
expiring offline tokens. Each request is shaped as Shopify documents it (JSON body,
`Accept: application/json`). The shop domain is checked against the anchored pattern before any
URL is built from it, so no caller can turn a bad `shop` value into a request elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import requests

from connectors.base import ConnectorError

SHOP_DOMAIN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com\Z")
# @shopify/shopify-api rejects admin query timestamps further than this from now.
TIMESTAMP_TOLERANCE_SECONDS = 90
HTTP_TIMEOUT_SECONDS = 10

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN, not a secret
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105
# Keys that may appear once only in a signed admin query (as @shopify/shopify-api enforces).
SINGLE_KEYS = ("hmac", "shop", "signature", "timestamp")


class InvalidShopDomain(ValueError):
    """The value is not a `*.myshopify.com` domain; nothing may be built from it."""


class TokenRequestRefused(RuntimeError):
    """Shopify answered 4xx: the code, session token or refresh token is not accepted."""

    def __init__(self, status: int, error: str, description: str = ""):
        self.status = status
        self.error = error
        self.description = description
        super().__init__(f"Shopify refused the token request ({status} {error}): {description}")


class TokenEndpointUnavailable(ConnectorError):
    """Network failure or 5xx from the token endpoint: worth retrying later."""


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    scope: str
    access_token_expires_at: datetime | None
    refresh_token: str | None
    refresh_token_expires_at: datetime | None


def is_shop_domain(value: object) -> bool:
    return isinstance(value, str) and bool(SHOP_DOMAIN.match(value))


def require_shop_domain(value: object) -> str:
    if not is_shop_domain(value):
        raise InvalidShopDomain(f"not a myshopify.com shop domain: {value!r}")
    return str(value)


# -- query HMAC ------------------------------------------------------------------------------


def _encode(value: str) -> str:
    """Percent-encode like URLSearchParams, with spaces as %20 (as Shopify signs them)."""
    return quote(value, safe="*-._").replace("~", "%7E")


def admin_query_message(pairs: Iterable[tuple[str, str]]) -> str | None:
    """The signed message of an admin query, or None if a must-be-single key repeats."""
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key in seen:
            # `hmac`, `shop`, `signature`, `timestamp` must be single (SINGLE_KEYS), and arrays
            # are never part of an install or callback query, so any repeat is refused.
            return None
        seen[key] = value
    return "&".join(
        f"{_encode(k)}={_encode(v)}"
        for k, v in sorted(seen.items())
        if k not in ("hmac", "signature")
    )


def query_hmac_valid(pairs: Iterable[tuple[str, str]], secret: str) -> bool:
    """Hex HMAC-SHA256 of the sorted query without `hmac`/`signature`, compared in constant time."""
    pairs = list(pairs)
    given = [v for k, v in pairs if k == "hmac"]
    message = admin_query_message(pairs)
    if len(given) != 1 or message is None:
        return False
    expected = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given[0].lower().encode())


def clock() -> float:
    """Seconds since the epoch; tests replaying Shopify's 2012 examples stop it."""
    return time.time()


def timestamp_fresh(raw: str | None) -> bool:
    try:
        stamp = int(raw or "")
    except ValueError:
        return False
    return abs(clock() - stamp) <= TIMESTAMP_TOLERANCE_SECONDS


# -- token endpoint --------------------------------------------------------------------------


def token_url(shop: str) -> str:
    return f"https://{require_shop_domain(shop)}/admin/oauth/access_token"


def authorize_url(shop: str, client_id: str, scopes: str, redirect_uri: str, state: str) -> str:
    query = "&".join(
        f"{k}={quote(v, safe='')}"
        for k, v in (
            ("client_id", client_id),
            ("scope", scopes),
            ("redirect_uri", redirect_uri),
            ("state", state),
        )
    )
    return f"https://{require_shop_domain(shop)}/admin/oauth/authorize?{query}"


def _post(shop: str, body: dict[str, str]) -> TokenGrant:
    url = token_url(shop)
    try:
        response = requests.post(
            url,
            json=body,
            headers={"Accept": "application/json"},
            timeout=HTTP_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise TokenEndpointUnavailable(f"token endpoint of {shop} unreachable: {exc}") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise TokenEndpointUnavailable(
            f"token endpoint of {shop} answered {response.status_code}; try again later"
        )
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code != 200 or not isinstance(data, dict) or "access_token" not in data:
        data = data if isinstance(data, dict) else {}
        raise TokenRequestRefused(
            response.status_code,
            str(data.get("error") or "invalid_response"),
            str(data.get("error_description") or data.get("errors") or ""),
        )
    return grant_from(data)


def grant_from(data: dict, now: datetime | None = None) -> TokenGrant:
    now = now or datetime.now(UTC)

    def later(seconds) -> datetime | None:
        try:
            return now + timedelta(seconds=int(seconds)) if seconds is not None else None
        except (TypeError, ValueError):
            return None

    return TokenGrant(
        access_token=str(data["access_token"]),
        scope=str(data.get("scope") or ""),
        access_token_expires_at=later(data.get("expires_in")),
        refresh_token=data.get("refresh_token") or None,
        refresh_token_expires_at=later(data.get("refresh_token_expires_in")),
    )


def exchange_session_token(
    shop: str, session_token: str, client_id: str, client_secret: str
) -> TokenGrant:
    """Managed install: the admin's session token becomes an expiring offline token."""
    return _post(
        shop,
        {
            "client_id": client_id,
            "client_secret": client_secret,
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": session_token,
            "subject_token_type": ID_TOKEN_TYPE,
            "requested_token_type": OFFLINE_TOKEN_TYPE,
            "expiring": "1",
        },
    )


def exchange_code(shop: str, code: str, client_id: str, client_secret: str) -> TokenGrant:
    """Authorization-code grant (fallback install), asking for an expiring offline token."""
    return _post(
        shop,
        {"client_id": client_id, "client_secret": client_secret, "code": code, "expiring": "1"},
    )


def refresh(shop: str, refresh_token: str, client_id: str, client_secret: str) -> TokenGrant:
    """A new access token (and a new refresh token: Shopify rotates it on every use)."""
    return _post(
        shop,
        {
            "client_id": client_id,
            "client_secret": client_secret,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        },
    )
