"""A Shopify shop's install and its offline access token: stored encrypted, refreshed before it
expires, and handed to the connector as plain `Credentials`.

Expiring offline tokens last an hour and Shopify rotates the refresh token on every use, so a
refreshed pair must be saved even if the job that needed it later fails and rolls back: losing
it would leave only a spent refresh token and force the merchant to re-authorise. Refreshes
therefore run in their own short transaction, holding the shop's row lock so two workers
never spend the same refresh token. Callers get plain token strings; nothing else decrypts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from typing import NoReturn

from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from connectors.base import ConnectorError, ReauthorisationRequired, TokenCallbacks
from connectors.shopify import oauth
from plugin.models import InstallStatus, Platform, Shop, utcnow
from plugin.services.shops import install_shop
from plugin.services.tokens import TokenVault, vault

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)
# The background job looks further ahead than the on-demand margin, so a token is usually
# fresh before any job asks for it.
BACKGROUND_MARGIN = timedelta(minutes=15)
TOKEN_COLUMNS = (
    "status",
    "access_token_encrypted",
    "refresh_token_encrypted",
    "access_token_expires_at",
    "refresh_token_expires_at",
    "scopes",
    "reauth_reason",
    "reauth_at",
)


def store_grant(session: Session, shop_domain: str, grant: oauth.TokenGrant) -> Shop:
    """Install (or re-install, or re-authorise) a shop with a fresh token pair."""
    shop = install_shop(
        session,
        vault(),
        Platform.SHOPIFY,
        oauth.require_shop_domain(shop_domain),
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        access_token_expires_at=grant.access_token_expires_at,
        refresh_token_expires_at=grant.refresh_token_expires_at,
        scopes=grant.scope,
    )
    shop.reauth_reason = None
    shop.reauth_at = None
    return shop


def credentials(session: Session, shop: Shop) -> TokenCallbacks:
    """The shop's token for the connector: refreshed as needed, and a refusal marks the shop."""
    return TokenCallbacks(
        access_token=lambda: access_token_for(session, shop),
        refresh_after_unauthorized=lambda: refresh_after_unauthorized(session, shop),
        refused=lambda reason: mark_needs_reauthorisation(shop, reason),
    )


def _needs_refresh(shop: Shop, now: datetime, margin: timedelta) -> bool:
    expires = shop.access_token_expires_at
    return expires is not None and expires - now <= margin


def _usable(shop: Shop) -> None:
    if shop.status == InstallStatus.UNINSTALLED or not shop.access_token_encrypted:
        raise ReauthorisationRequired(f"{shop.domain} has no usable token (app uninstalled)")
    if shop.status == InstallStatus.NEEDS_REAUTH:
        raise ReauthorisationRequired(f"{shop.domain} needs the merchant to re-authorise the app")


def access_token_for(session: Session, shop: Shop) -> str:
    """The shop's offline token, refreshed first if it expires within five minutes."""
    _usable(shop)
    if _needs_refresh(shop, utcnow(), REFRESH_MARGIN):
        _refresh(shop, force=False)
    return vault().decrypt(shop.access_token_encrypted)


def refresh_after_unauthorized(session: Session, shop: Shop) -> str:
    """Shopify answered 401: refresh once. If that fails, the merchant must re-authorise."""
    _usable(shop)
    _refresh(shop, force=True)
    return vault().decrypt(shop.access_token_encrypted)


@contextmanager
def _own_transaction() -> Iterator[Session]:
    maker = current_app.extensions["db_sessionmaker"]
    session: Session = maker()
    try:
        if session.get_bind().dialect.name == "postgresql":
            # Never wait forever on a row the calling job's own transaction may hold.
            session.execute(text("SET LOCAL lock_timeout = '10s'"))
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _refresh(shop: Shop, *, force: bool) -> None:
    """Refresh under the shop's row lock, commit, and show the result on the caller's object.

    The values are set as committed on the caller's `shop`, so they neither dirty the caller's
    unit of work nor get lost if it rolls back (the database already holds them).
    """
    seen_token = shop.access_token_encrypted
    fresh: dict[str, object] = {}
    try:
        with _own_transaction() as own:
            locked = own.scalars(select(Shop).where(Shop.id == shop.id).with_for_update()).one()
            try:
                _refresh_locked(locked, seen_token=seen_token, force=force)
            finally:
                fresh = {name: getattr(locked, name) for name in TOKEN_COLUMNS}
    except OperationalError as exc:
        raise ConnectorError(f"could not lock {shop.domain} to refresh its token: {exc}") from exc
    finally:
        for name, value in fresh.items():
            set_committed_value(shop, name, value)


def _refresh_locked(shop: Shop, *, seen_token: str | None, force: bool) -> None:
    now = utcnow()
    if shop.access_token_encrypted != seen_token and shop.status == InstallStatus.INSTALLED:
        return  # another worker refreshed while we waited for the lock: use its token
    if not force and not _needs_refresh(shop, now, REFRESH_MARGIN):
        return
    _usable(shop)
    _refresh_row(shop, now, vault())


def _refresh_row(shop: Shop, now: datetime, token_vault: TokenVault) -> None:
    """One call to Shopify's token endpoint; a refusal marks the shop as needing re-auth.

    The shop's status is committed even though ReauthorisationRequired is raised, because the
    merchant must see it: the caller catches the error, `_own_transaction` would roll back, so
    the mark is written in its own statement first.
    """
    settings = current_app.extensions["settings"]
    refresh_expired = (
        shop.refresh_token_expires_at is not None and shop.refresh_token_expires_at <= now
    )
    if not shop.refresh_token_encrypted or refresh_expired:
        reason = "its refresh token expired" if refresh_expired else "it has no refresh token"
        _mark_needs_reauth(shop, f"token can't be refreshed: {reason}")
    try:
        grant = oauth.refresh(
            shop.domain,
            token_vault.decrypt(shop.refresh_token_encrypted),
            settings.shopify_client_id,
            settings.shopify_client_secret,
        )
    except oauth.TokenRequestRefused as exc:
        _mark_needs_reauth(shop, str(exc))
    shop.access_token_encrypted = token_vault.encrypt(grant.access_token)
    if grant.refresh_token:
        shop.refresh_token_encrypted = token_vault.encrypt(grant.refresh_token)
        shop.refresh_token_expires_at = grant.refresh_token_expires_at
    shop.access_token_expires_at = grant.access_token_expires_at
    if grant.scope:
        shop.scopes = grant.scope
    log.info("refreshed the Shopify token of %s", shop.domain)


def _mark_needs_reauth(shop: Shop, reason: str) -> NoReturn:
    log.warning("Shopify shop %s needs re-authorisation: %s", shop.domain, reason)
    session = Session.object_session(shop)
    shop.status = InstallStatus.NEEDS_REAUTH
    shop.reauth_reason = reason[:500]
    shop.reauth_at = utcnow()
    session.commit()  # kept although the error below ends the transaction
    raise ReauthorisationRequired(f"{shop.domain}: {reason}")


def mark_needs_reauthorisation(shop: Shop, reason: str) -> None:
    """Shopify refused even a freshly refreshed token: the merchant must re-authorise.

    Committed in its own transaction (the failing job will roll back its own), and shown on
    the caller's `shop` at once.
    """
    with _own_transaction() as own:
        locked = own.scalars(select(Shop).where(Shop.id == shop.id).with_for_update()).one()
        if locked.status == InstallStatus.INSTALLED:
            with suppress(ReauthorisationRequired):  # raised after the mark is committed
                _mark_needs_reauth(locked, reason)
        fresh = {name: getattr(locked, name) for name in ("status", "reauth_reason", "reauth_at")}
    for name, value in fresh.items():
        set_committed_value(shop, name, value)


def refresh_expiring_tokens(within: timedelta = BACKGROUND_MARGIN) -> int:
    """Background job: refresh every installed Shopify shop's token that expires soon.

    Returns how many were refreshed. A refused refresh marks that shop as needing
    re-authorisation and the job carries on with the others.
    """
    maker = current_app.extensions["db_sessionmaker"]
    with maker() as reader:
        due = list(
            reader.scalars(
                select(Shop.id).where(
                    Shop.platform == Platform.SHOPIFY,
                    Shop.status == InstallStatus.INSTALLED,
                    Shop.refresh_token_encrypted.is_not(None),
                    Shop.access_token_expires_at <= utcnow() + within,
                )
            )
        )
    refreshed = 0
    for shop_id in due:
        try:
            with _own_transaction() as own:
                shop = own.scalars(select(Shop).where(Shop.id == shop_id).with_for_update()).one()
                if shop.status != InstallStatus.INSTALLED or not _needs_refresh(
                    shop, utcnow(), within
                ):
                    continue
                _refresh_row(shop, utcnow(), vault())
                refreshed += 1
        except ReauthorisationRequired:
            continue
        except ConnectorError as exc:
            log.warning("token refresh of shop %s deferred: %s", shop_id, exc)
    return refreshed
