"""BigCommerce's install handshake: trade the one-time `code` from `GET /auth` for a store token.

BigCommerce documents the exchange as a JSON POST to login.bigcommerce.com/oauth2/token carrying
the callback's own `code`, `scope` and `context` plus the app's credentials and the registered
`redirect_uri`. The code is single-use and short-lived, so the exchange happens before the
callback answers, and nothing is stored unless BigCommerce hands back a token for the very store
that asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import requests

TOKEN_URL = "https://login.bigcommerce.com/oauth2/token"  # noqa: S105 - an endpoint, not a secret
CONTEXT = re.compile(r"^stores/([a-z0-9]{1,32})$")
TIMEOUT_SECONDS = 15


class InstallRefused(Exception):
    """The install cannot go ahead; the message is safe to show the merchant."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StoreGrant:
    """What BigCommerce answers for a successful exchange."""

    store_hash: str
    access_token: str
    scope: str
    user: dict = field(default_factory=dict)
    owner: dict | None = None
    account_uuid: str | None = None


def store_hash_from_context(context: str | None) -> str:
    """`stores/{hash}` -> `hash`; anything else is not a store BigCommerce would name."""
    match = CONTEXT.match((context or "").strip())
    if match is None:
        raise InstallRefused("The install link does not name a BigCommerce store (context).")
    return match.group(1)


def exchange_code(
    *,
    client_id: str,
    client_secret: str,
    code: str,
    scope: str,
    context: str,
    redirect_uri: str,
    http: requests.Session | None = None,
) -> StoreGrant:
    """POST the code to BigCommerce and return the store's token, or raise InstallRefused."""
    store_hash = store_hash_from_context(context)
    body = {
        "client_id": client_id,
        "client_secret": client_secret,
        "code": code,
        "context": context,
        "scope": scope,
        "grant_type": "authorization_code",
        "redirect_uri": redirect_uri,
    }
    sender = http or requests
    try:
        response = sender.post(
            TOKEN_URL,
            json=body,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
            timeout=TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise InstallRefused(
            "BigCommerce could not be reached to finish the install. Please try again.", 502
        ) from exc

    if response.status_code >= 500:
        raise InstallRefused(
            f"BigCommerce had a problem finishing the install (HTTP {response.status_code}). "
            "Please try again.",
            502,
        )
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code != 200 or not isinstance(payload, dict):
        reason = _error_text(payload) or f"HTTP {response.status_code}"
        raise InstallRefused(
            f"BigCommerce refused the install ({reason}). Start the install again from your "
            "store's control panel; install links work only once and only for a short time."
        )

    token = payload.get("access_token")
    if not isinstance(token, str) or not token:
        raise InstallRefused("BigCommerce answered without an access token.", 502)
    granted_context = payload.get("context") or context
    if granted_context != context:
        raise InstallRefused("BigCommerce granted access to a different store than requested.")
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    owner = payload.get("owner") if isinstance(payload.get("owner"), dict) else None
    return StoreGrant(
        store_hash=store_hash,
        access_token=token,
        scope=str(payload.get("scope") or scope),
        user=user,
        owner=owner,
        account_uuid=payload.get("account_uuid"),
    )


def _error_text(payload: object) -> str:
    if not isinstance(payload, dict):
        return ""
    for key in ("error_description", "error", "title", "message"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value[:200]
    return ""
