"""A BigCommerce store's install, its users, and its webhook/script registration.

BigCommerce is multi-user: the owner installs, and any staff user the owner lets use the app
opens it through `load`. The app keeps, per store, who may see it (`platform_data["users"]`); a
verified load from a new user adds them, `remove_user` takes them out, and an uninstall empties
the list with the token. A user removed at time T cannot come back with a load payload signed
before T (payloads live 24 hours), only with a fresh one BigCommerce signs after the owner
grants access again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from connectors.base import ConnectorError
from connectors.bigcommerce.oauth import StoreGrant
from connectors.bigcommerce.registration import (
    WEBHOOK_SECRET_KEY,
    RegistrationResult,
    V3Client,
    new_webhook_secret,
    register_store,
)
from connectors.bigcommerce.signed_payload import CallbackClaims
from plugin.models import Platform, Shop, utcnow
from plugin.services.shops import find_shop, install_shop, mark_uninstalled
from plugin.services.tokens import TokenDecryptionError, TokenVault

log = logging.getLogger(__name__)
PLATFORM = Platform.BIGCOMMERCE


class AccessRefused(Exception):
    """The store or user may not use the app (not installed, or access was revoked)."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.status = status


def find_store(session: Session, store_hash: str) -> Shop | None:
    return find_shop(session, PLATFORM, store_hash)


def users_of(shop: Shop) -> dict[str, dict]:
    return dict((shop.platform_data or {}).get("users") or {})


def user_belongs(shop: Shop, user_id: str) -> bool:
    return shop.is_active and str(user_id) in users_of(shop)


def _with_user(data: dict, user_id: str, email: str, locale: str | None = None) -> dict:
    users = dict(data.get("users") or {})
    entry = dict(users.get(user_id) or {})
    entry["email"] = email or entry.get("email", "")
    if locale:
        entry["locale"] = locale
    users[user_id] = entry
    removed = dict(data.get("removed_users") or {})
    removed.pop(user_id, None)
    return {**data, "users": users, "removed_users": removed}


def install(session: Session, vault: TokenVault, grant: StoreGrant) -> Shop:
    """Store the token (encrypted by install_shop) and remember the installing user."""
    shop = install_shop(
        session,
        vault,
        PLATFORM,
        grant.store_hash,
        access_token=grant.access_token,
        scopes=grant.scope,
    )
    data = dict(shop.platform_data or {})
    # One secret per store, kept across reinstalls: hooks that survive carry it already.
    data.setdefault(WEBHOOK_SECRET_KEY, new_webhook_secret())
    if grant.account_uuid:
        data["account_uuid"] = grant.account_uuid
    if grant.owner and grant.owner.get("id") is not None:
        data["owner_id"] = str(grant.owner["id"])
        data["owner_email"] = grant.owner.get("email", "")
    if grant.user.get("id") is not None:
        data = _with_user(data, str(grant.user["id"]), str(grant.user.get("email") or ""))
        # Only the owner or an authorised user can install; with no owner named, it's them.
        data.setdefault("owner_id", str(grant.user["id"]))
        data.setdefault("owner_email", str(grant.user.get("email") or ""))
    shop.platform_data = data
    session.flush()
    return shop


def admit(session: Session, claims: CallbackClaims) -> Shop:
    """A verified `load`: the store must be installed, the user not revoked since signing."""
    shop = find_store(session, claims.store_hash)
    if shop is None or not shop.is_active:
        raise AccessRefused(
            "Backorder Badges is not installed on this store. Install it from the BigCommerce "
            "App Marketplace first.",
            404,
        )
    data = dict(shop.platform_data or {})
    removed_at = (data.get("removed_users") or {}).get(claims.user_id)
    if removed_at is not None and claims.issued_at <= int(removed_at):
        raise AccessRefused("Your access to Backorder Badges on this store was removed.")
    data = _with_user(data, claims.user_id, claims.user_email, claims.user_locale)
    if claims.owner_id:
        data["owner_id"] = claims.owner_id
        data["owner_email"] = claims.owner_email or data.get("owner_email", "")
    shop.platform_data = data
    session.flush()
    return shop


def remove_user(session: Session, claims: CallbackClaims) -> bool:
    """The owner revoked a user's access; returns whether the app knew the store."""
    shop = find_store(session, claims.store_hash)
    if shop is None:
        return False
    data = dict(shop.platform_data or {})
    if claims.user_id == data.get("owner_id"):
        log.warning("remove_user for the owner of %s ignored", shop.domain)
        return True
    users = dict(data.get("users") or {})
    users.pop(claims.user_id, None)
    removed = dict(data.get("removed_users") or {})
    removed[claims.user_id] = max(claims.issued_at, int(utcnow().timestamp()))
    shop.platform_data = {**data, "users": users, "removed_users": removed}
    session.flush()
    return True


def uninstall(session: Session, claims: CallbackClaims) -> bool:
    """Token deleted, every user's access gone; BigCommerce deletes the hooks and the
    auto-uninstall script itself. The webhook secret stays for a reinstall."""
    shop = find_store(session, claims.store_hash)
    if shop is None:
        return False
    mark_uninstalled(shop)
    data = dict(shop.platform_data or {})
    for key in ("users", "hook_ids", "script_uuid", "registration_error"):
        data.pop(key, None)
    shop.platform_data = data
    session.flush()
    return True


def sync_registration(
    shop: Shop,
    vault: TokenVault,
    app_url: str,
    client_factory: Callable[[str, str], V3Client],
) -> RegistrationResult | None:
    """Ensure hooks and script; a failure is recorded and shown, never fatal to the page.

    The next load retries, and registration is idempotent, so nothing is lost by carrying on.
    """
    data = dict(shop.platform_data or {})
    if not shop.access_token_encrypted:
        return None
    secret = data.get(WEBHOOK_SECRET_KEY) or new_webhook_secret()
    data[WEBHOOK_SECRET_KEY] = secret
    try:
        client = client_factory(shop.domain, vault.decrypt(shop.access_token_encrypted))
        result = register_store(client, app_url, shop.domain, secret)
    except (ConnectorError, TokenDecryptionError) as exc:
        log.warning("webhook/script registration failed for %s: %s", shop.domain, exc)
        data["registration_error"] = str(exc)[:500]
        shop.platform_data = data
        return None
    data["hook_ids"] = dict(result.hook_ids)
    data["script_uuid"] = result.script_uuid
    data["registered_at"] = utcnow().isoformat()
    data.pop("registration_error", None)
    shop.platform_data = data
    if result.created or result.updated:
        log.info(
            "registration for %s: created %s, updated %s",
            shop.domain,
            result.created,
            result.updated,
        )
    return result
