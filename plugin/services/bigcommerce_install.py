"""A BigCommerce store's install, its users, and its webhook/script registration.

BigCommerce is multi-user: the owner installs, and any staff user the owner lets use the app
opens it through `load`. The app keeps, per store, who may see it (`StoreUser`); a verified
load from a new user admits them, `remove_user` revokes them, and an uninstall revokes everyone
with the token. A user removed at time T cannot come back with a load payload signed before T
(payloads live 24 hours), only with a fresh one BigCommerce signs after the owner grants access
again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connectors.base import ConnectorError
from connectors.bigcommerce.client import BigCommerceClient, api_base
from connectors.bigcommerce.oauth import StoreGrant
from connectors.bigcommerce.registration import (
    SCRIPT_NAME,
    WEBHOOK_SCOPES,
    RegistrationResult,
    V3Client,
    new_webhook_secret,
    register_store,
)
from connectors.bigcommerce.signed_payload import CallbackClaims
from plugin.models import Platform, Shop, StoreRegistration, StoreUser, utcnow
from plugin.services.shops import (
    find_shop,
    install_shop,
    mark_uninstalled,
    set_webhook_secret,
    webhook_secret,
)
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


def _user(session: Session, shop: Shop, user_id: str) -> StoreUser | None:
    return session.scalars(
        select(StoreUser).where(StoreUser.shop_id == shop.id, StoreUser.user_id == str(user_id))
    ).first()


def _user_row(session: Session, shop: Shop, user_id: str) -> StoreUser:
    user = _user(session, shop, user_id)
    if user is None:
        user = StoreUser(shop_id=shop.id, user_id=str(user_id), email="", is_owner=False)
        session.add(user)
    return user


def users_of(session: Session, shop: Shop) -> list[StoreUser]:
    """The users who may open the app now."""
    return [
        u
        for u in session.scalars(
            select(StoreUser).where(StoreUser.shop_id == shop.id).order_by(StoreUser.id)
        )
        if u.has_access
    ]


def user_belongs(session: Session, shop: Shop, user_id: str) -> bool:
    user = _user(session, shop, user_id)
    return shop.is_active and user is not None and user.has_access


def _admit(session: Session, shop: Shop, user_id: str, email: str, locale: str | None = None):
    user = _user_row(session, shop, user_id)
    user.email = email or user.email
    if locale:
        user.locale = locale
    user.admitted_at = user.admitted_at or utcnow()
    user.removed_at = None
    return user


def _set_owner(session: Session, shop: Shop, user_id: str, email: str | None) -> None:
    for user in session.scalars(select(StoreUser).where(StoreUser.shop_id == shop.id)):
        user.is_owner = user.user_id == str(user_id)
    owner = _user_row(session, shop, user_id)
    owner.is_owner = True
    if email:
        owner.email = email


def owner_of(session: Session, shop: Shop) -> StoreUser | None:
    return session.scalars(
        select(StoreUser).where(StoreUser.shop_id == shop.id, StoreUser.is_owner.is_(True))
    ).first()


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
    # One secret per store, kept across reinstalls: hooks that survive carry it already.
    if not shop.webhook_secret_encrypted:
        set_webhook_secret(shop, new_webhook_secret())
    if grant.account_uuid:
        shop.platform_account_id = grant.account_uuid
    if grant.owner and grant.owner.get("id") is not None:
        _set_owner(session, shop, str(grant.owner["id"]), grant.owner.get("email", ""))
    if grant.user.get("id") is not None:
        user_id = str(grant.user["id"])
        _admit(session, shop, user_id, str(grant.user.get("email") or ""))
        # Only the owner or an authorised user can install; with no owner named, it's them.
        session.flush()
        if owner_of(session, shop) is None:
            _set_owner(session, shop, user_id, str(grant.user.get("email") or ""))
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
    user = _user(session, shop, claims.user_id)
    if (
        user is not None
        and user.removed_at is not None
        and _epoch(claims.issued_at) <= user.removed_at
    ):
        raise AccessRefused("Your access to Backorder Badges on this store was removed.")
    _admit(session, shop, claims.user_id, claims.user_email, claims.user_locale)
    if claims.owner_id:
        session.flush()
        _set_owner(session, shop, claims.owner_id, claims.owner_email)
    session.flush()
    return shop


def remove_user(session: Session, claims: CallbackClaims) -> bool:
    """The owner revoked a user's access; returns whether the app knew the store."""
    shop = find_store(session, claims.store_hash)
    if shop is None:
        return False
    owner = owner_of(session, shop)
    if owner is not None and claims.user_id == owner.user_id:
        log.warning("remove_user for the owner of %s ignored", shop.domain)
        return True
    user = _user_row(session, shop, claims.user_id)
    user.admitted_at = None
    # Whole seconds, as payloads are signed: a load signed in this second is refused too.
    user.removed_at = max(_epoch(claims.issued_at), utcnow().replace(microsecond=0))
    session.flush()
    return True


def uninstall(session: Session, claims: CallbackClaims) -> bool:
    """Token deleted, every user's access gone; BigCommerce deletes the hooks and the
    auto-uninstall script itself. The webhook secret stays for a reinstall."""
    shop = find_store(session, claims.store_hash)
    if shop is None:
        return False
    mark_uninstalled(shop)
    for user in session.scalars(select(StoreUser).where(StoreUser.shop_id == shop.id)):
        user.admitted_at = None
    session.execute(delete(StoreRegistration).where(StoreRegistration.shop_id == shop.id))
    shop.registration_error = None
    session.flush()
    return True


def client_factory(api_base_override: str | None) -> Callable[[str, str], V3Client]:
    def build(store_hash: str, token: str) -> V3Client:
        return BigCommerceClient(
            store_hash, token, base_url=api_base(store_hash, api_base_override)
        )

    return build


def sync_registration(
    session: Session,
    shop: Shop,
    vault: TokenVault,
    app_url: str,
    client_factory: Callable[[str, str], V3Client],
    client_id: str | None = None,
) -> RegistrationResult | None:
    """Ensure hooks and script; a failure is recorded and shown, never fatal to the page.

    The next load retries, and registration is idempotent, so nothing is lost by carrying on.
    """
    if not shop.access_token_encrypted:
        return None
    secret = webhook_secret(shop)
    if not secret:
        secret = new_webhook_secret()
        set_webhook_secret(shop, secret)
    try:
        client = client_factory(shop.domain, vault.decrypt(shop.access_token_encrypted))
        result = register_store(client, app_url, shop.domain, secret, client_id=client_id)
    except (ConnectorError, TokenDecryptionError) as exc:
        log.warning("webhook/script registration failed for %s: %s", shop.domain, exc)
        shop.registration_error = str(exc)[:500]
        return None
    now = utcnow()
    session.execute(delete(StoreRegistration).where(StoreRegistration.shop_id == shop.id))
    for scope, hook_id in result.hook_ids.items():
        session.add(
            StoreRegistration(
                shop_id=shop.id,
                kind="webhook",
                name=scope,
                remote_id=str(hook_id),
                registered_at=now,
            )
        )
    if result.script_uuid:
        session.add(
            StoreRegistration(
                shop_id=shop.id,
                kind="script",
                name=SCRIPT_NAME,
                remote_id=result.script_uuid,
                registered_at=now,
            )
        )
    shop.registered_at = now
    shop.registration_error = None
    if result.created or result.updated:
        log.info(
            "registration for %s: created %s, updated %s",
            shop.domain,
            result.created,
            result.updated,
        )
    return result


def registration_facts(session: Session, shop: Shop) -> dict:
    """What support staff see of the store's hooks and script."""
    rows = session.scalars(
        select(StoreRegistration).where(StoreRegistration.shop_id == shop.id)
    ).all()
    return {
        "hooks_registered": sum(1 for r in rows if r.kind == "webhook"),
        "hooks_wanted": len(WEBHOOK_SCOPES),
        "script_registered": any(r.kind == "script" for r in rows),
        "registered_at": shop.registered_at.isoformat() if shop.registered_at else None,
        "registration_error": shop.registration_error,
    }


def _epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)
