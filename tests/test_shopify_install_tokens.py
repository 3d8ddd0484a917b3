"""Expiring offline tokens: refreshed before expiry, once after a 401, needs_reauth on refusal."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import responses
from flask import current_app
from sqlalchemy import select

from connectors.base import ConnectorError, ReauthorisationRequired
from plugin.extensions import db
from plugin.models import InstallStatus, Shop
from plugin.services.shopify_install import (
    access_token_for,
    credentials,
    mark_needs_reauthorisation,
    refresh_after_unauthorized,
    refresh_expiring_tokens,
)
from plugin.services.shops import mark_uninstalled
from plugin.services.tokens import vault
from tests.factories import shopify_shop
from tests.shopify_install_helpers import TOKEN_URL, grant_body

SHOP = "cool-shop.myshopify.com"
# An expiring offline token pair, as Shopify grants it; each test says when the token expires.
OLD_PAIR = {"token": "shpat_old", "refresh_token": "shprt_old"}
REFRESH_BODY = {
    "client_id": "shopify-client-id",
    "client_secret": "shopify-client-secret",
    "grant_type": "refresh_token",
    "refresh_token": "shprt_old",
}


def _stored(domain: str = SHOP) -> Shop:
    """The row as another process would read it now."""
    with current_app.extensions["db_sessionmaker"]() as other:
        return other.scalars(select(Shop).where(Shop.domain == domain)).one()


def test_fresh_token_is_used_without_calling_shopify(app):
    shop = shopify_shop(SHOP, **OLD_PAIR, expires_in=timedelta(minutes=30))
    with responses.RequestsMock() as rsps:
        assert access_token_for(db.session, shop) == "shpat_old"
        assert len(rsps.calls) == 0


def test_token_expiring_within_five_minutes_is_refreshed_first_and_stored_encrypted(app):
    shop = shopify_shop(SHOP, **OLD_PAIR, expires_in=timedelta(minutes=4))
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL.format(shop=SHOP), json=grant_body("shpat_new", "shprt_new"))
        assert access_token_for(db.session, shop) == "shpat_new"
        assert len(rsps.calls) == 1
        sent = rsps.calls[0].request
    assert json.loads(sent.body) == REFRESH_BODY
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Accept"] == "application/json"

    row = _stored()
    assert "shpat_new" not in row.access_token_encrypted
    assert vault().decrypt(row.access_token_encrypted) == "shpat_new"
    assert vault().decrypt(row.refresh_token_encrypted) == "shprt_new"  # rotated
    assert timedelta(minutes=59) < row.access_token_expires_at - shop.installed_at
    # The caller's object shows it too, without the caller having anything to commit.
    assert shop.access_token_encrypted == row.access_token_encrypted
    assert not db.session.dirty


def test_expired_token_refresh_survives_the_callers_rollback(app):
    shop = shopify_shop(SHOP, **OLD_PAIR, expires_in=timedelta(minutes=-10))
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL.format(shop=SHOP), json=grant_body("shpat_new", "shprt_new"))
        access_token_for(db.session, shop)
    db.session.rollback()  # the job that wanted the token failed later
    assert vault().decrypt(_stored().refresh_token_encrypted) == "shprt_new"
    with responses.RequestsMock() as rsps:  # and the next job needs no refresh
        assert access_token_for(db.session, shop) == "shpat_new"
        assert len(rsps.calls) == 0


def test_401_triggers_exactly_one_refresh(app):
    shop = shopify_shop(SHOP, **OLD_PAIR, expires_in=timedelta(minutes=50))
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL.format(shop=SHOP), json=grant_body("shpat_after_401", "shprt_2"))
        assert refresh_after_unauthorized(db.session, shop) == "shpat_after_401"
        assert len(rsps.calls) == 1
        assert json.loads(rsps.calls[0].request.body) == REFRESH_BODY


def test_refused_refresh_marks_the_shop_as_needing_reauthorisation(app):
    shop = shopify_shop(SHOP, **OLD_PAIR, expires_in=timedelta(minutes=50))
    with responses.RequestsMock() as rsps:
        rsps.post(
            TOKEN_URL.format(shop=SHOP),
            status=400,
            json={"error": "invalid_grant", "error_description": "refresh token revoked"},
        )
        with pytest.raises(ReauthorisationRequired):
            refresh_after_unauthorized(db.session, shop)
        assert len(rsps.calls) == 1
    db.session.rollback()  # the failing job rolls back; the mark stays
    row = _stored()
    assert row.status == InstallStatus.NEEDS_REAUTH
    assert "invalid_grant" in row.reauth_reason
    assert shop.status == InstallStatus.NEEDS_REAUTH
    # From now on no job tries the dead token again until the merchant re-authorises.
    with responses.RequestsMock() as rsps:
        with pytest.raises(ReauthorisationRequired):
            access_token_for(db.session, shop)
        assert len(rsps.calls) == 0


def test_token_endpoint_outage_is_retryable_and_not_a_reauthorisation(app):
    shop = shopify_shop(SHOP, **OLD_PAIR, expires_in=timedelta(minutes=1))
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL.format(shop=SHOP), status=503, body="upstream down")
        with pytest.raises(ConnectorError) as caught:
            access_token_for(db.session, shop)
    assert not isinstance(caught.value, ReauthorisationRequired)
    assert _stored().status == InstallStatus.INSTALLED
    assert vault().decrypt(_stored().refresh_token_encrypted) == "shprt_old"


def test_expired_refresh_token_needs_reauthorisation_without_a_call(app):
    shop = shopify_shop(SHOP, **OLD_PAIR, expires_in=timedelta(minutes=1))
    shop.refresh_token_expires_at = shop.access_token_expires_at - timedelta(hours=1)
    db.session.commit()
    with responses.RequestsMock() as rsps:
        with pytest.raises(ReauthorisationRequired):
            access_token_for(db.session, shop)
        assert len(rsps.calls) == 0
    assert _stored().status == InstallStatus.NEEDS_REAUTH


def test_uninstalled_shop_token_is_unusable(app):
    shop = shopify_shop(SHOP, **OLD_PAIR, expires_in=timedelta(hours=1))
    mark_uninstalled(shop)
    db.session.commit()
    with responses.RequestsMock() as rsps:
        with pytest.raises(ReauthorisationRequired):
            access_token_for(db.session, shop)
        with pytest.raises(ReauthorisationRequired):
            refresh_after_unauthorized(db.session, shop)
        assert len(rsps.calls) == 0


def test_a_refresh_done_by_another_worker_is_reused_not_repeated(app):
    shop = shopify_shop(SHOP, **OLD_PAIR, expires_in=timedelta(minutes=50))
    # Another worker refreshed while this one was getting its 401.
    with current_app.extensions["db_sessionmaker"]() as other:
        row = other.get(Shop, shop.id)
        row.access_token_encrypted = vault().encrypt("shpat_by_other_worker")
        other.commit()
    with responses.RequestsMock() as rsps:
        assert refresh_after_unauthorized(db.session, shop) == "shpat_by_other_worker"
        assert len(rsps.calls) == 0


def test_background_job_refreshes_only_installed_shops_expiring_soon(app):
    from plugin.jobs import refresh_expiring_tokens as scheduled_refresh

    due = shopify_shop("due.myshopify.com", **OLD_PAIR, expires_in=timedelta(minutes=10))
    shopify_shop("later.myshopify.com", **OLD_PAIR, expires_in=timedelta(hours=2))
    shopify_shop("legacy.myshopify.com", token="shpat_old")  # a non-expiring token
    gone = shopify_shop("gone.myshopify.com", **OLD_PAIR, expires_in=timedelta(minutes=1))
    mark_uninstalled(gone)
    revoked = shopify_shop("revoked.myshopify.com", **OLD_PAIR, expires_in=timedelta(minutes=3))
    db.session.commit()
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL.format(shop=due.domain), json=grant_body("shpat_due"))
        rsps.post(
            TOKEN_URL.format(shop=revoked.domain), status=401, json={"error": "invalid_client"}
        )
        assert refresh_expiring_tokens() == 1
        # The clock's scheduled job (plugin/schedule.py) runs the same refresh.
        assert scheduled_refresh() == "refreshed 0 token(s)"  # nothing due any more
        assert sorted(c.request.url for c in rsps.calls) == [
            TOKEN_URL.format(shop=due.domain),
            TOKEN_URL.format(shop=revoked.domain),
        ]
    assert vault().decrypt(_stored(due.domain).access_token_encrypted) == "shpat_due"
    assert _stored(revoked.domain).status == InstallStatus.NEEDS_REAUTH
    assert _stored("later.myshopify.com").status == InstallStatus.INSTALLED


# -- through the GraphQL client the connector uses ------------------------------------------------

GRAPHQL_URL = "https://cool-shop.myshopify.com/admin/api/2025-01/graphql.json"
SHOP_QUERY = "query ShopName { shop { name } }"
COST = {
    "requestedQueryCost": 1,
    "actualQueryCost": 1,
    "throttleStatus": {
        "maximumAvailable": 2000.0,
        "currentlyAvailable": 1999,
        "restoreRate": 100.0,
    },
}


def test_graphql_401_refreshes_once_and_retries_with_the_new_token(app):
    from connectors.shopify.graphql import ShopifyGraphQL

    shop = shopify_shop(SHOP, **OLD_PAIR, expires_in=timedelta(minutes=50))
    client = ShopifyGraphQL(SHOP, credentials(db.session, shop), buckets={})
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL_URL, status=401, json={"errors": "[API] Invalid API key or access token"})
        rsps.post(TOKEN_URL.format(shop=SHOP), json=grant_body("shpat_fresh", "shprt_fresh"))
        rsps.post(
            GRAPHQL_URL, json={"data": {"shop": {"name": "Cool"}}, "extensions": {"cost": COST}}
        )
        assert client.execute(SHOP_QUERY) == {"shop": {"name": "Cool"}}
        sent = [
            (c.request.url, c.request.headers.get("X-Shopify-Access-Token")) for c in rsps.calls
        ]
    assert sent == [
        (GRAPHQL_URL, "shpat_old"),
        (TOKEN_URL.format(shop=SHOP), None),
        (GRAPHQL_URL, "shpat_fresh"),
    ]
    assert vault().decrypt(_stored().access_token_encrypted) == "shpat_fresh"


def test_mark_needs_reauthorisation_is_kept_after_the_jobs_rollback(app):
    shop = shopify_shop(SHOP, **OLD_PAIR, expires_in=timedelta(hours=1))
    mark_needs_reauthorisation(shop, "Shopify refused the refreshed token")
    db.session.rollback()
    assert _stored().status == InstallStatus.NEEDS_REAUTH
    assert _stored().reauth_reason == "Shopify refused the refreshed token"
    with pytest.raises(ReauthorisationRequired):
        access_token_for(db.session, shop)
