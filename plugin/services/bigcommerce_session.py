"""The app's own short-lived token for pages inside BigCommerce's control-panel iframe.

The control panel is on another site, so browsers that block third-party cookies (Safari, and
Chrome without partitioning) never send a session cookie there. After a verified `load`, the app
signs {store hash, user id, the user's locale} with its SECRET_KEY and the embedded pages carry
that token in their URLs, forms and `Authorization: Bearer` headers instead (the locale makes
every page speak the user's language). It expires after an hour (the merchant
reopens the app for a fresh one) and is only as good as the user's membership of the store: a
user removed by the owner is refused at once, token or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "bigcommerce-embedded-app"
MAX_AGE_SECONDS = 3600


class AppTokenRefused(Exception):
    def __init__(self, message: str, expired: bool = False):
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class AppIdentity:
    store_hash: str
    user_id: str
    # The user's language as BigCommerce gave it at `load` ("fr_FR"), checked: the admin's.
    locale: str | None = None


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def issue(secret_key: str, store_hash: str, user_id: str, locale: str | None = None) -> str:
    data = {"s": store_hash, "u": str(user_id)}
    if locale:
        data["l"] = locale
    return _serializer(secret_key).dumps(data)


def read(secret_key: str, token: str, max_age: int = MAX_AGE_SECONDS) -> AppIdentity:
    if not token:
        raise AppTokenRefused("No app token: open Backorder Badges from your store's Apps menu.")
    try:
        data = _serializer(secret_key).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise AppTokenRefused(
            "This page has been open for over an hour. Reopen Backorder Badges from your "
            "store's Apps menu.",
            expired=True,
        ) from exc
    except BadSignature as exc:
        raise AppTokenRefused("The app token is not valid.") from exc
    if not isinstance(data, dict) or not data.get("s") or not data.get("u"):
        raise AppTokenRefused("The app token is not valid.")
    locale = data.get("l")
    return AppIdentity(
        store_hash=str(data["s"]),
        user_id=str(data["u"]),
        locale=str(locale)[:35] if locale else None,
    )
