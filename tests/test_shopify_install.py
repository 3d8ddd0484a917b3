"""Authorization-code install: signed query, shop-domain refusal, state cookie, code exchange."""

from __future__ import annotations

import json
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import responses
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from connectors.shopify import oauth
from plugin import ROOT, create_app
from plugin.extensions import db
from plugin.models import InstallStatus, Platform
from plugin.services.shops import find_shop
from plugin.services.tokens import vault
from tests.conftest import _truncate, base_env
from tests.shopify_install_helpers import (
    FIRST_SYNC_CALLS,
    TOKEN_URL,
    expect_first_sync,
    grant_body,
    graphql_url,
    signed_admin_query,
)

SHOP = "cool-shop.myshopify.com"
O1_QUERY = (
    "code=0907a61c0c8d55e99db179b68161bc00"
    "&hmac=700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
    "&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173"
)
O2_PAIRS = [
    ("code", "0907a61c0c8d55e99db179b68161bc00"),
    ("hmac", "4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20"),
    ("shop", "some-shop.myshopify.com"),
    ("timestamp", "1337178173"),
]
BAD_SHOPS = [
    "evil.com",
    "x.myshopify.com.evil.com",
    "https://x.myshopify.com",
    "x.myshopify.com/",
    "x.myshopify.com\n",
    "-x.myshopify.com",
    "x.myshopify.com@evil.com",
    "",
]


# -- the published vectors -----------------------------------------------------------------------


def test_shopify_documented_query_hmac_vectors():
    assert oauth.query_hmac_valid(parse_qsl(O1_QUERY), "hush")
    assert oauth.query_hmac_valid(O2_PAIRS, "hush")
    assert oauth.admin_query_message(parse_qsl(O1_QUERY)) == (
        "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com"
        "&state=0.6784241404160823&timestamp=1337178173"
    )


def test_tampered_or_repeated_or_wrong_secret_queries_fail():
    tampered = [(k, "0.6784241404160824" if k == "state" else v) for k, v in parse_qsl(O1_QUERY)]
    assert not oauth.query_hmac_valid(tampered, "hush")
    assert not oauth.query_hmac_valid(parse_qsl(O1_QUERY), "not-hush")
    assert not oauth.query_hmac_valid([*O2_PAIRS, ("shop", "other.myshopify.com")], "hush")
    assert not oauth.query_hmac_valid([p for p in O2_PAIRS if p[0] != "hmac"], "hush")


def test_spaces_are_signed_as_percent_20():
    assert oauth.admin_query_message([("a", "b c"), ("hmac", "x")]) == "a=b%20c"


# -- install redirect ------------------------------------------------------------------------


def test_install_redirects_to_authorize_with_state_in_signed_cookie(app, client):
    with responses.RequestsMock() as rsps:
        response = client.get(f"/shopify/install?{signed_admin_query(SHOP, host='YWRtaW4')}")
        assert len(rsps.calls) == 0
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", SHOP, "/admin/oauth/authorize")
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    manifest = json.loads((ROOT / "app-manifest.json").read_text())
    assert query["client_id"] == "shopify-client-id"
    assert query["scope"] == ",".join(manifest["platforms"]["shopify"]["scopes"])
    assert query["redirect_uri"] == "https://app.test/shopify/auth/callback"
    assert len(query["state"]) >= 32

    header = response.headers["Set-Cookie"]
    for attribute in (
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=600",
        "Path=/shopify/auth/callback",
    ):
        assert attribute in header
    cookie = SimpleCookie(header)["shopify_oauth_state"].value
    kept = URLSafeTimedSerializer("test-secret-key", salt="shopify-oauth-state").loads(cookie)
    assert kept == {"state": query["state"], "shop": SHOP}


def test_each_install_gets_its_own_state(client):
    first = client.get(f"/shopify/install?{signed_admin_query(SHOP)}")
    second = client.get(f"/shopify/install?{signed_admin_query(SHOP)}")
    state = lambda r: parse_qs(urlsplit(r.headers["Location"]).query)["state"][0]  # noqa: E731
    assert state(first) != state(second)


@pytest.mark.parametrize("path", ["/shopify/install", "/shopify/auth/callback", "/shopify/app"])
@pytest.mark.parametrize("bad_shop", BAD_SHOPS)
def test_bad_shop_is_refused_before_any_redirect_or_call(client, path, bad_shop):
    # Correctly signed, so only the shop value is wrong.
    query = signed_admin_query(bad_shop, code="abc", state="s")
    with responses.RequestsMock() as rsps:
        response = client.get(f"{path}?{query}")
        assert len(rsps.calls) == 0
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none';"


# -- callback --------------------------------------------------------------------------------


def _start_install(client) -> str:
    response = client.get(f"/shopify/install?{signed_admin_query(SHOP)}")
    return parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]


def _callback(client, state: str, **extra):
    params = {"code": "0907a61c0c8d55e99db179b68161bc00", "state": state, **extra}
    return client.get(f"/shopify/auth/callback?{signed_admin_query(SHOP, **params)}")


def test_callback_exchanges_code_for_expiring_token_and_opens_the_app(app, client):
    state = _start_install(client)
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL.format(shop=SHOP), json=grant_body("shpat_a", "shprt_a"))
        expect_first_sync(rsps, SHOP)
        host = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvY29vbC1zaG9w"  # admin.shopify.com/store/cool-shop
        response = _callback(client, state, host=host)
        # The token request, then the first read of the catalogue with the new token.
        assert [c.request.url for c in rsps.calls] == [
            TOKEN_URL.format(shop=SHOP),
            *[graphql_url(SHOP)] * FIRST_SYNC_CALLS,
        ]
        assert rsps.calls[1].request.headers["X-Shopify-Access-Token"] == "shpat_a"
        sent = rsps.calls[0].request
    assert json.loads(sent.body) == {
        "client_id": "shopify-client-id",
        "client_secret": "shopify-client-secret",
        "code": "0907a61c0c8d55e99db179b68161bc00",
        "expiring": "1",
    }
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Accept"] == "application/json"
    assert response.status_code == 302
    assert response.headers["Location"] == (
        "https://admin.shopify.com/store/cool-shop/apps/shopify-client-id"
    )
    assert "shopify_oauth_state=;" in response.headers["Set-Cookie"]  # spent

    db.session.expire_all()
    shop = find_shop(db.session, Platform.SHOPIFY, SHOP)
    assert shop.status == InstallStatus.INSTALLED
    assert "shpat_a" not in shop.access_token_encrypted
    assert vault().decrypt(shop.access_token_encrypted) == "shpat_a"
    assert vault().decrypt(shop.refresh_token_encrypted) == "shprt_a"
    assert 3500 < (shop.access_token_expires_at - shop.installed_at).total_seconds() <= 3600
    assert shop.refresh_token_expires_at > shop.access_token_expires_at


def test_callback_host_that_is_not_shopify_admin_is_ignored(client):
    state = _start_install(client)
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL.format(shop=SHOP), json=grant_body())
        expect_first_sync(rsps, SHOP)
        response = _callback(client, state, host="ZXZpbC5jb20vYWRtaW4")  # evil.com/admin
    assert response.headers["Location"] == f"https://{SHOP}/admin/apps/shopify-client-id"


@pytest.mark.parametrize("case", ["other state", "no cookie", "cookie of another shop", "expired"])
def test_callback_state_mismatch_is_refused(app, client, case):
    state = _start_install(client)
    if case == "other state":
        state = state[:-1] + ("A" if state[-1] != "A" else "B")
    elif case == "no cookie":
        client.delete_cookie("shopify_oauth_state", path="/shopify/auth/callback")
    else:

        class OldSigner(TimestampSigner):
            def get_timestamp(self):
                return int(time.time()) - (601 if case == "expired" else 0)

        shop = "other-shop.myshopify.com" if case != "expired" else SHOP
        serializer = URLSafeTimedSerializer(
            "test-secret-key", salt="shopify-oauth-state", signer=OldSigner
        )
        value = serializer.dumps({"state": state, "shop": shop})
        client.set_cookie("shopify_oauth_state", value, path="/shopify/auth/callback")
    with responses.RequestsMock() as rsps:
        response = _callback(client, state)
        assert len(rsps.calls) == 0
    assert response.status_code == 403
    assert find_shop(db.session, Platform.SHOPIFY, SHOP) is None


def _tampered_install(client) -> str:
    return "/shopify/install?" + signed_admin_query(SHOP).replace("timestamp=", "timestamp=1")


def _stale_install(client) -> str:
    return "/shopify/install?" + signed_admin_query(SHOP, timestamp=str(int(time.time()) - 91))


def _install_without_shop(client) -> str:
    return "/shopify/install"


def _tampered_callback(client) -> str:
    state = _start_install(client)
    query = signed_admin_query(SHOP, code="abc", state=state).replace("code=abc", "code=abd")
    return f"/shopify/auth/callback?{query}"


@pytest.mark.parametrize(
    ("request_to", "status", "says"),
    [
        (_tampered_install, 401, b"signature"),
        (_stale_install, 400, None),
        (_install_without_shop, 400, None),
        (_tampered_callback, 401, None),
    ],
    ids=["tampered-install", "stale-install", "no-shop", "tampered-callback"],
)
def test_unsigned_stale_or_shopless_requests_are_refused(client, request_to, status, says):
    url = request_to(client)
    with responses.RequestsMock() as rsps:
        response = client.get(url)
        assert len(rsps.calls) == 0
    assert response.status_code == status
    assert "Location" not in response.headers
    assert "Set-Cookie" not in response.headers
    if says:
        assert says in response.data


def test_refused_code_gets_a_clear_error_and_installs_nothing(client):
    state = _start_install(client)
    with responses.RequestsMock() as rsps:
        rsps.post(
            TOKEN_URL.format(shop=SHOP),
            status=400,
            json={
                "error": "invalid_request",
                "error_description": "The authorization code was not found or was already used",
            },
        )
        response = _callback(client, state)
    assert response.status_code == 400
    assert b"Shopify did not accept the authorization code (invalid_request)" in response.data
    assert find_shop(db.session, Platform.SHOPIFY, SHOP) is None


# -- Shopify's own example, replayed through the endpoint ----------------------------------------


@pytest.fixture
def hush_client(database_url, monkeypatch):
    """The app with Shopify's documented example secret, and the clock stopped at its timestamp."""
    _truncate(database_url)
    application = create_app(base_env(DATABASE_URL=database_url, SHOPIFY_CLIENT_SECRET="hush"))
    monkeypatch.setattr(oauth, "clock", lambda: 1337178173 + 30)
    with application.app_context():
        yield application.test_client()


def test_documented_callback_example_is_accepted(hush_client):
    cookie = URLSafeTimedSerializer("test-secret-key", salt="shopify-oauth-state").dumps(
        {"state": "0.6784241404160823", "shop": "some-shop.myshopify.com"}
    )
    hush_client.set_cookie("shopify_oauth_state", cookie, path="/shopify/auth/callback")
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL.format(shop="some-shop.myshopify.com"), json=grant_body())
        expect_first_sync(rsps, "some-shop.myshopify.com")
        response = hush_client.get(f"/shopify/auth/callback?{O1_QUERY}")
    assert response.status_code == 302
    assert find_shop(db.session, Platform.SHOPIFY, "some-shop.myshopify.com").is_active


def test_documented_example_is_stale_without_the_stopped_clock(hush_client, monkeypatch):
    monkeypatch.setattr(oauth, "clock", lambda: 1337178173 + 91)
    response = hush_client.get(f"/shopify/auth/callback?{O1_QUERY}")
    assert response.status_code == 400
