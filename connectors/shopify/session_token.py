"""Checking the session token (JWT) App Bridge sends with every request from the admin.

Rules as in Shopify's own libraries: HS256 signed with the client secret, `aud` is the client
id, `exp` and `nbf` with 10 seconds of clock leeway, and `dest` is `https://{shop}` for a
`*.myshopify.com` shop (with `iss` naming the same shop's admin). Whether that shop has the app
installed is the caller's question, since it needs the database.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from connectors.shopify.oauth import is_shop_domain

LEEWAY_SECONDS = 10
REQUIRED_CLAIMS = ("iss", "dest", "aud", "exp", "nbf")


class InvalidSessionToken(ValueError):
    """The token is missing, forged, expired, for another app, or names no shop."""


@dataclass(frozen=True)
class SessionToken:
    shop: str
    user_id: str | None
    session_id: str | None
    raw: str


def _shop_of(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.port or parts.username or parts.query:
        return None
    return parts.hostname if is_shop_domain(parts.netloc) else None


def verify(token: str | None, client_id: str, client_secret: str) -> SessionToken:
    """The token's shop and user, or InvalidSessionToken saying why not."""
    if not token:
        raise InvalidSessionToken("no session token")
    options = {"require": list(REQUIRED_CLAIMS)}
    try:
        with warnings.catch_warnings():
            # The key is the client secret Shopify issued; its length is not ours to choose.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            claims = jwt.decode(
                token,
                client_secret,
                algorithms=["HS256"],
                audience=client_id,
                leeway=LEEWAY_SECONDS,
                options=options,
            )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidSessionToken("session token expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise InvalidSessionToken("session token not valid yet") from exc
    except jwt.InvalidAudienceError as exc:
        raise InvalidSessionToken("session token is for another app") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidSessionToken(f"invalid session token: {exc}") from exc

    if claims.get("aud") != client_id:  # exactly the client id, as Shopify's libraries check
        raise InvalidSessionToken("session token is for another app")
    shop = _shop_of(claims.get("dest"))
    if shop is None:
        raise InvalidSessionToken("session token `dest` is not a shop")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or _shop_of(issuer.removesuffix("/admin")) != shop:
        raise InvalidSessionToken("session token `iss` and `dest` name different shops")
    sub = claims.get("sub")
    sid = claims.get("sid")
    return SessionToken(
        shop=shop,
        user_id=str(sub) if sub is not None else None,
        session_id=str(sid) if sid is not None else None,
        raw=token,
    )
