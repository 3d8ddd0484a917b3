"""The embedded app: session tokens on every API call, token exchange, CSP per shop."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import jwt
import pytest
import responses
from flask import current_app
from sqlalchemy import select

from connectors.base import ReauthorisationRequired
from plugin.extensions import db
from plugin.models import InstallStatus, Platform, Shop
from plugin.services.shopify_install import access_token_for
from plugin.services.shops import find_shop, mark_uninstalled
from plugin.services.tokens import vault
from tests import factories
from tests.shopify_install_helpers import (
    FIRST_SYNC_CALLS,
    TOKEN_URL,
    expect_first_sync,
    grant_body,
    graphql_url,
    session_token,
)

SHOP = "cool-shop.myshopify.com"
EXCHANGE_BODY = {
    "client_id": "shopify-client-id",
    "client_secret": "shopify-client-secret",
    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
    "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
    "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
    "expiring": "1",
}


def csp_for(shop: str) -> str:
    return f"frame-ancestors https://{shop} https://admin.shopify.com;"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- first open: managed install + token exchange ------------------------------------------------


def test_first_open_exchanges_the_session_token_and_shows_the_app(app, client):
    token = session_token(SHOP)
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL.format(shop=SHOP), json=grant_body("shpat_x", "shprt_x"))
        expect_first_sync(rsps, SHOP)
        response = client.get(f"/shopify/app?shop={SHOP}&host=abc&embedded=1&id_token={token}")
        assert [c.request.url for c in rsps.calls] == [
            TOKEN_URL.format(shop=SHOP),
            *[graphql_url(SHOP)] * FIRST_SYNC_CALLS,
        ]
        sent = rsps.calls[0].request
        assert json.loads(sent.body) == {**EXCHANGE_BODY, "subject_token": token}
        assert sent.headers["Content-Type"] == "application/json"
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    head = html.split("</head>")[0]
    assert '<meta name="shopify-api-key" content="shopify-client-id">' in head
    assert '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>' in head
    assert '<script src="https://cdn.shopify.com/shopifycloud/polaris-1.js"></script>' in head
    assert 'id="overview"' in html
    assert "Backorder Badges is installed" in html
    assert response.headers["Content-Security-Policy"] == csp_for(SHOP)
    assert "Set-Cookie" not in response.headers  # no cookies inside the admin iframe

    shop = find_shop(db.session, Platform.SHOPIFY, SHOP)
    assert shop.status == InstallStatus.INSTALLED
    assert vault().decrypt(shop.access_token_encrypted) == "shpat_x"
    assert vault().decrypt(shop.refresh_token_encrypted) == "shprt_x"
    assert "shpat_x" not in shop.access_token_encrypted


def test_invalid_session_token_at_exchange_gets_a_clear_error(app, client):
    with responses.RequestsMock() as rsps:
        rsps.post(
            TOKEN_URL.format(shop=SHOP),
            status=400,
            json={
                "error": "invalid_subject_token",
                "error_description": "Token is invalid or has expired",
            },
        )
        response = client.get(f"/shopify/app?shop={SHOP}&id_token={session_token(SHOP)}")
    assert response.status_code == 401
    assert "Shopify did not accept this session" in response.get_data(as_text=True)
    assert "invalid_subject_token" in response.get_data(as_text=True)
    assert response.headers["Content-Security-Policy"] == csp_for(SHOP)
    assert find_shop(db.session, Platform.SHOPIFY, SHOP) is None


def test_installed_shop_opens_without_a_token_request(app, client):
    factories.shopify_shop(SHOP)
    with responses.RequestsMock() as rsps:
        response = client.get(f"/shopify/app/support?shop={SHOP}&id_token={session_token(SHOP)}")
        assert len(rsps.calls) == 0
    assert response.status_code == 200
    assert "Recent badge changes" in response.get_data(as_text=True)
    assert "re-authorise" not in response.get_data(as_text=True).lower()


@pytest.mark.parametrize(
    "make",
    [
        lambda: session_token(SHOP, secret="not-the-client-secret"),
        lambda: session_token(SHOP, exp_in=-11),
        lambda: session_token(SHOP, aud="another-app"),
        lambda: "not_a_valid_token",
    ],
    ids=["forged", "expired", "wrong-aud", "garbage"],
)
def test_app_page_refuses_bad_id_token(app, client, make):
    with responses.RequestsMock() as rsps:
        response = client.get(f"/shopify/app?shop={SHOP}&id_token={make()}")
        assert len(rsps.calls) == 0
    assert response.status_code == 401
    assert response.headers["Content-Security-Policy"] == csp_for(SHOP)
    assert 'id="settings-form"' not in response.get_data(as_text=True)


def test_without_id_token_the_page_only_bootstraps_app_bridge(app, client):
    factories.shopify_shop(SHOP)
    response = client.get(f"/shopify/app?shop={SHOP}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "shopify.idToken" in html and 'id="settings-form"' not in html
    assert response.headers["Content-Security-Policy"] == csp_for(SHOP)


# -- every API call checks its session token --------------------------------------------------


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: session_token(SHOP, secret="not-the-client-secret"), "Signature"),
        (lambda: session_token(SHOP, exp_in=-11), "expired"),
        (lambda: session_token(SHOP, exp_in=600, nbf_in=120), "not valid yet"),
        (lambda: session_token(SHOP, aud="another-app"), "another app"),
        # This app among others is not enough: Shopify's libraries want exactly its client id.
        (lambda: session_token(SHOP, aud=["shopify-client-id", "other"]), "another app"),
        (lambda: session_token(SHOP, dest="https://notadomain"), "dest"),
        (lambda: session_token("elsewhere.myshopify.com"), "not have the app installed"),
        (lambda: jwt.encode({"dest": f"https://{SHOP}"}, None, algorithm="none"), "invalid"),
        (lambda: None, "no session token"),
    ],
    ids=[
        "forged",
        "expired",
        "nbf-future",
        "wrong-aud",
        "list-aud",
        "bad-dest",
        "not-installed",
        "alg-none",
        "missing",
    ],
)
def test_api_refuses_bad_session_tokens(app, client, make, reason):
    factories.shopify_shop(SHOP)
    token = make()
    headers = bearer(token) if token else {}
    for path in ("/shopify/api/settings", "/shopify/api/support"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, path
        assert reason in response.json["error"]
    post = client.post("/shopify/api/settings", data={"label_in_stock": "x"}, headers=headers)
    assert post.status_code == 401


def test_api_refuses_uninstalled_shop(app, client):
    shop = factories.shopify_shop(SHOP)
    mark_uninstalled(shop)
    db.session.commit()
    response = client.get("/shopify/api/settings", headers=bearer(session_token(SHOP)))
    assert response.status_code == 401


def test_api_accepts_a_valid_token_within_clock_leeway(app, client):
    factories.shopify_shop(SHOP)
    for token in (
        session_token(SHOP),
        session_token(SHOP, exp_in=-5),
        session_token(SHOP, nbf_in=5),
    ):
        response = client.get("/shopify/api/settings", headers=bearer(token))
        assert response.status_code == 200
        assert response.json["values"]["label_backorder"] == "Backorder, ships by {eta}"
    assert "Content-Security-Policy" not in response.headers  # JSON, not a page


def test_invalid_token_answer_asks_app_bridge_to_retry_with_a_new_one(app, client):
    factories.shopify_shop(SHOP)
    response = client.get("/shopify/api/settings", headers=bearer(session_token(SHOP, exp_in=-30)))
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


@responses.activate
def test_settings_save_through_api_all_or_nothing(app, client):
    factories.shopify_shop(SHOP)
    # The changed label reaches the storefront's shop metafield (read, then written).
    responses.post(
        graphql_url(SHOP),
        json={
            "data": {
                "shop": {"id": "gid://shopify/Shop/548380009", "metafield": None},
                "metafieldDefinitions": {
                    "nodes": [
                        {
                            "id": "gid://shopify/MetafieldDefinition/7",
                            "key": "storefront",
                            "access": {"storefront": "PUBLIC_READ"},
                        }
                    ]
                },
            }
        },
    )
    responses.post(
        graphql_url(SHOP), json={"data": {"metafieldsSet": {"metafields": [], "userErrors": []}}}
    )
    headers = bearer(session_token(SHOP))
    current = client.get("/shopify/api/settings", headers=headers).json["values"]

    bad = {**current, "label_backorder": "Backorder soon", "color_in_stock": "green"}
    response = client.post("/shopify/api/settings", json=bad, headers=headers)
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"label_backorder", "color_in_stock"}
    assert client.get("/shopify/api/settings", headers=headers).json["values"] == current

    good = {**current, "label_backorder": "Ships by {eta}", "default_lead_days": "21"}
    response = client.post("/shopify/api/settings", data=good, headers=headers)
    assert response.status_code == 200 and response.json["saved"] is True
    saved = client.get("/shopify/api/settings", headers=headers).json["values"]
    assert (saved["label_backorder"], saved["default_lead_days"]) == ("Ships by {eta}", "21")
    pushed = json.loads(responses.calls[-1].request.body)["variables"]["metafields"][0]
    assert json.loads(pushed["value"])["labels"]["en"]["backorder"] == "Ships by {eta}"


def test_support_view_reports_inbox_and_status(app, client):
    factories.shopify_shop(SHOP)
    response = client.get("/shopify/api/support", headers=bearer(session_token(SHOP)))
    assert response.status_code == 200
    assert response.json["status"] == "installed"
    assert response.json["transitions"] == []
    assert response.json["inbox"]["last_received_at"] is None


# -- CSP per shop -------------------------------------------------------------------------------


def test_csp_names_each_shop_never_a_wildcard(app, client):
    other = "second-shop.myshopify.com"
    factories.shopify_shop(SHOP)
    factories.shopify_shop(other)
    for domain in (SHOP, other):
        response = client.get(f"/shopify/app?shop={domain}&id_token={session_token(domain)}")
        assert response.status_code == 200
        assert response.headers["Content-Security-Policy"] == csp_for(domain)
        assert "*" not in response.headers["Content-Security-Policy"]


def test_csp_follows_the_verified_token_not_the_query(app, client):
    factories.shopify_shop(SHOP)
    response = client.get(f"/shopify/app?id_token={session_token(SHOP)}")
    assert response.headers["Content-Security-Policy"] == csp_for(SHOP)
    mismatch = client.get(
        f"/shopify/app?shop=second-shop.myshopify.com&id_token={session_token(SHOP)}"
    )
    assert mismatch.status_code == 401


# -- re-authorisation is visible -------------------------------------------------------------------


def expired_shop() -> Shop:
    """Its token expired a minute ago; the next use must refresh it."""
    return factories.shopify_shop(
        SHOP, token="shpat_old", refresh_token="shprt_old", expires_in=timedelta(minutes=-1)
    )


def _fail_refresh(shop):
    with responses.RequestsMock() as rsps:
        rsps.post(
            TOKEN_URL.format(shop=SHOP),
            status=400,
            json={"error": "invalid_grant", "error_description": "refresh token expired"},
        )
        with pytest.raises(ReauthorisationRequired):
            access_token_for(db.session, shop)
    db.session.rollback()


def test_refresh_failure_shows_reauthorise_banner(app, client):
    _fail_refresh(expired_shop())
    with responses.RequestsMock() as rsps:
        # Opening the app tries a token exchange first; here Shopify refuses that too.
        rsps.post(TOKEN_URL.format(shop=SHOP), status=400, json={"error": "invalid_subject_token"})
        response = client.get(f"/shopify/app?shop={SHOP}&id_token={session_token(SHOP)}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    banner = re.search(r'<s-banner tone="critical".*?</s-banner>', html, re.S).group(0)
    assert 'role="alert"' in banner
    assert "re-authorise Backorder Badges" in banner
    assert "badges on your storefront are not being updated" in " ".join(banner.split())
    assert (
        'href="https://admin.shopify.com/store/cool-shop/oauth/install?client_id=shopify-client-id"'
        in banner
    )
    assert "invalid_grant" in banner
    settings = client.get("/shopify/api/support", headers=bearer(session_token(SHOP)))
    assert settings.json["status"] == "needs_reauth"


def test_reopening_the_app_reauthorises_by_token_exchange(app, client):
    _fail_refresh(expired_shop())
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL.format(shop=SHOP), json=grant_body("shpat_back", "shprt_back"))
        expect_first_sync(rsps, SHOP)
        response = client.get(f"/shopify/app?shop={SHOP}&id_token={session_token(SHOP)}")
    html = response.get_data(as_text=True)
    assert "Access to your store is restored" in html
    assert 'id="reauth-banner"' not in html
    with current_app.extensions["db_sessionmaker"]() as other:
        row = other.scalars(select(Shop).where(Shop.domain == SHOP)).one()
        assert row.status == InstallStatus.INSTALLED
        assert row.reauth_reason is None and row.reauth_at is None
        assert vault().decrypt(row.access_token_encrypted) == "shpat_back"


def test_signed_first_visit_without_session_token_goes_to_the_oauth_install(app, client):
    from tests.shopify_install_helpers import signed_admin_query

    query = signed_admin_query(SHOP)
    response = client.get(f"/shopify/app?{query}")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/shopify/install?")
    follow = client.get(location)
    assert follow.status_code == 302
    assert follow.headers["Location"].startswith(f"https://{SHOP}/admin/oauth/authorize?")


def test_unsigned_visit_of_unknown_shop_gets_no_redirect(app, client):
    response = client.get(f"/shopify/app?shop={SHOP}&timestamp=1&hmac=00")
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert 'id="settings-form"' not in response.get_data(as_text=True)


def test_support_view_shows_badge_changes_and_webhook_health(app, client):
    from datetime import date

    from plugin.models import BadgeKind, BadgeTransition, WebhookEvent

    shop = factories.shopify_shop(SHOP)
    product = factories.product(
        shop,
        "632910392",
        "IPod Nano - 8GB",
        variants=[{"platform_id": "808950810", "sku": "IPOD2008PINK", "title": "Pink"}],
    )
    (variant,) = product.variants
    db.session.add(
        BadgeTransition(
            shop_id=shop.id,
            variant_id=variant.id,
            from_state=BadgeKind.IN_STOCK,
            to_state=BadgeKind.BACKORDER,
            to_eta=date(2026, 12, 24),
            label="Backorder, ships by Thu, December 24, 2026",
            cause="webhook",
        )
    )
    for number, status in enumerate(["processed", "processed", "failed"]):
        db.session.add(
            WebhookEvent(
                platform="shopify",
                shop_id=shop.id,
                shop_domain=SHOP,
                topic="inventory_levels/update",
                event_id=f"evt-{number}",
                body=b"{}",
                status=status,
                attempts=3 if status == "failed" else 1,
                last_error="Shopify answered HTTP 502" if status == "failed" else None,
            )
        )
    db.session.commit()

    support = client.get("/shopify/api/support", headers=bearer(session_token(SHOP))).json
    assert support["inbox"]["counts"] == {
        "pending": 0,
        "processed": 2,
        "failed": 1,
        "ignored": 0,
        "dead_letter": 0,
    }
    assert support["inbox"]["failing"] == [
        {"topic": "inventory_levels/update", "attempts": 3, "error": "Shopify answered HTTP 502"}
    ]
    [change] = support["transitions"]
    assert (change["variant"], change["from"], change["to"], change["eta"]) == (
        "IPod Nano - 8GB · Pink",
        "in_stock",
        "backorder",
        "Thu, December 24, 2026",
    )

    html = client.get(f"/shopify/app/support?shop={SHOP}&id_token={session_token(SHOP)}").get_data(
        as_text=True
    )
    assert "Backorder, ships by Thu, December 24, 2026" in html
    assert "(was in stock)" in html
    assert "2 processed · 0 waiting · 1 failing" in " ".join(html.split())
    assert "inventory_levels/update: Shopify answered HTTP 502 (3 attempt(s))" in html


def test_reopening_after_uninstall_reinstalls_by_token_exchange(app, client):
    shop = factories.shopify_shop(SHOP)
    mark_uninstalled(shop)
    db.session.commit()
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL.format(shop=SHOP), json=grant_body("shpat_again"))
        expect_first_sync(rsps, SHOP)
        response = client.get(f"/shopify/app?shop={SHOP}&id_token={session_token(SHOP)}")
        assert len(rsps.calls) == 1 + FIRST_SYNC_CALLS
    assert "Backorder Badges is installed" in response.get_data(as_text=True)
    db.session.expire_all()
    shop = find_shop(db.session, Platform.SHOPIFY, SHOP)
    assert shop.status == InstallStatus.INSTALLED
    assert vault().decrypt(shop.access_token_encrypted) == "shpat_again"
